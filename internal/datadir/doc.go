// Package datadir is the cloud's data directory and what the operator
// does to it without the server running: its files and settings
// (cloud.json), 'cloud init', 'cloud tenant add' and 'cloud tenant domain
// add|list|delete', the release key and 'release publish|list|delete|keygen',
// and opening the store with the key-encryption key (store-kek.key) that
// wraps the private keys it holds. The running server (package cloud)
// opens the directory through it; it never imports cloud.
package datadir
