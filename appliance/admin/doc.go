// Package admin owns the administration API: the operations behind
// `hearth admin …` and `hearth backup`, served to local administrators over
// a unix socket in the data directory while the daemon runs (permissions
// 0600 and a peer-credential check), and run directly on the database file
// when it does not. There is never a second writer on the file: a command
// either reaches the daemon or holds the file's lock itself.
package admin
