//go:build !unix

package discovery

import "syscall"

// shareAddr is a no-op where SO_REUSEPORT does not exist; Hearth ships for
// Linux only.
func shareAddr(network, address string, c syscall.RawConn) error { return nil }
