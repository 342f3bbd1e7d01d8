package admin

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Check is one line of `hearth doctor`: what was checked, how it went and,
// when it did not go well, how to fix it.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"` // ok, warn or fail
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Check statuses.
const (
	CheckOK   = "ok"
	CheckWarn = "warn"
	CheckFail = "fail"
)

// DiskCheck reports the free space on the data directory's file system.
func DiskCheck(dir string) Check {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return Check{Name: "disk", Status: CheckFail, Detail: fmt.Sprintf("cannot read free space of %s: %v", dir, err),
			Fix: "check that the data directory exists and is readable"}
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	total := int64(st.Blocks) * int64(st.Bsize)
	c := Check{Name: "disk", Status: CheckOK, Detail: fmt.Sprintf("%s free of %s on %s", BytesText(free), BytesText(total), dir)}
	switch {
	case free < 100<<20:
		c.Status, c.Fix = CheckFail, "free some space: uploads and new messages are refused when the disk is full"
	case free < 1<<30 || (total > 0 && free*20 < total):
		c.Status, c.Fix = CheckWarn, "little space left; delete old attachments or move the data directory to a larger disk"
	}
	return c
}

// ClockCheck reports whether the clock looks set: certificates and
// sessions depend on it.
func ClockCheck(now time.Time) Check {
	if now.Year() < 2025 {
		return Check{Name: "clock", Status: CheckFail, Detail: "the clock says " + now.Format(time.RFC3339),
			Fix: "enable time sync: sudo timedatectl set-ntp true (a Pi without a clock battery starts in the past)"}
	}
	return Check{Name: "clock", Status: CheckOK, Detail: now.Format("2006-01-02 15:04 MST")}
}

// DataDirCheck reports whether the data directory is private and writable.
func DataDirCheck(dir string) Check {
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return Check{Name: "data", Status: CheckWarn, Detail: dir + " does not exist yet", Fix: "start hearth once; it creates it"}
	}
	if err != nil {
		return Check{Name: "data", Status: CheckFail, Detail: err.Error(), Fix: "check the permissions of " + dir}
	}
	if st.Mode().Perm()&0o077 != 0 {
		return Check{Name: "data", Status: CheckWarn, Detail: fmt.Sprintf("%s is readable by others (%v)", dir, st.Mode().Perm()),
			Fix: "chmod 700 " + dir}
	}
	probe := filepath.Join(dir, ".doctor-probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		return Check{Name: "data", Status: CheckFail, Detail: "cannot write in " + dir + ": " + err.Error(),
			Fix: "run as the user that owns it (sudo -u hearth …) or fix its owner"}
	}
	os.Remove(probe)
	return Check{Name: "data", Status: CheckOK, Detail: dir}
}

// PortCheck reports whether a TCP address can be bound (used when the
// daemon does not run: a taken port would stop it from starting).
func PortCheck(name, addr string) Check {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fix := "stop what uses it (sudo ss -ltnp | grep " + addr + ") or choose another address"
		if errors.Is(err, syscall.EACCES) {
			fix = "ports below 1024 need root or CAP_NET_BIND_SERVICE (the systemd unit grants it)"
		}
		return Check{Name: name, Status: CheckFail, Detail: fmt.Sprintf("cannot listen on %s: %v", addr, err), Fix: fix}
	}
	l.Close()
	return Check{Name: name, Status: CheckOK, Detail: addr + " is free"}
}

// BytesText says a size the way people read it: "1.5 GiB".
func BytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
