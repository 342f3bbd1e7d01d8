//go:build !unix

package hub

import "syscall"

// writeFD writes nothing where write(2) is not at hand: the connection's
// writer goroutine sends the frame instead.
func writeFD(uintptr, []byte) (int, error) { return 0, syscall.EAGAIN }
