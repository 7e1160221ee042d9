// Package statedir is the connector's state directory: the files a
// registered connector keeps on its machine and the rules for changing
// them. It owns their names, the trust settings file (trust.json) with
// its crash-safe switch from one certificate and key to the next, the
// connector's settings (connector.json), the run status a running
// connector writes (status.json), the run lock, and the default directory
// per operating system.
//
// The connector, the updater, the doctor and the command line share it,
// so that none of them needs the connector's proxy to read its files. It
// does no networking.
package statedir
