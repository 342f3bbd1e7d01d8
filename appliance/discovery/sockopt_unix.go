//go:build unix

package discovery

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// shareAddr lets the socket share its address with other mDNS stacks on the
// box (avahi-daemon sets SO_REUSEADDR, mDNSResponder SO_REUSEPORT; the
// kernel allows the bind when both sides set the same one).
func shareAddr(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
			serr = fmt.Errorf("set SO_REUSEADDR: %w", serr)
			return
		}
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
			serr = fmt.Errorf("set SO_REUSEPORT: %w", serr)
		}
	})
	if err != nil {
		return err
	}
	return serr
}
