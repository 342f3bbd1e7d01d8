//go:build !linux

package tailnettest

import (
	"errors"
	"syscall"
)

func newNetNS() *syscall.SysProcAttr { return nil }

func upLoopback() error { return errors.New("network namespaces are Linux only") }
