package service

// RegisteredFile is the file whose presence means "registered".
const RegisteredFile = registeredFile
