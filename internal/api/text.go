package api

import (
	"fmt"
	"time"
)

// The wording of a new registration token, shared by the CLI's answer
// ('admin token create') and the admin center's, so that both say it alike.

// LifetimeText is d in whole days (from 2 days), hours or minutes when it
// is one: "7 days", "24 hours", "90 minutes".
func LifetimeText(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return plural(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return plural(int64(d/time.Minute), "minute")
	}
	return d.Round(time.Second).String()
}

// RegistrationsText says how many registrations a token with maxUses allows.
func RegistrationsText(maxUses int) string {
	switch maxUses {
	case 0:
		return "any number of registrations until then"
	case 1:
		return "1 registration"
	}
	return fmt.Sprintf("%d registrations", maxUses)
}
