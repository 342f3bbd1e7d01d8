// Package systemd is Hearth's side of the service manager: READY=1 once
// every listener serves, STATUS= lines, STOPPING=1, watchdog pings tied to a
// real liveness check, and listening sockets passed by socket activation.
// Off systemd (no NOTIFY_SOCKET, no LISTEN_FDS) everything is a no-op.
//
// It is the only package that imports go-systemd.
package systemd
