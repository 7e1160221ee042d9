package connector

// SetStepHook interrupts state changes at a named step (as a crash would)
// and returns a function restoring the default.
func SetStepHook(f func(step string) error) func() {
	old := stepHook
	stepHook = f
	return func() { stepHook = old }
}
