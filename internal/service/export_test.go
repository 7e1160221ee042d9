package service

// RegisteredFile is the file whose presence means "registered".
const RegisteredFile = registeredFile

// UpdaterSubDir is the updater's directory, which install leaves to root.
const UpdaterSubDir = updaterSubDir
