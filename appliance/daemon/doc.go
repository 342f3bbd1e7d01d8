// Package daemon is the one place that knows every part of Hearth: it builds
// the service from a configuration, opens the store, binds the listeners
// (or takes them from socket activation or a test), starts the parts in
// dependency order, rolls back what started if a later part fails, tells
// systemd when it is ready, and stops everything in reverse order under one
// deadline.
package daemon
