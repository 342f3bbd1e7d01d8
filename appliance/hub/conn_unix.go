//go:build unix

package hub

import "syscall"

// writeFD is one write(2) on a socket in non-blocking mode.
func writeFD(fd uintptr, p []byte) (int, error) { return syscall.Write(int(fd), p) }
