package proof_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hearth-home/hearth/appliance/store"
)

// TestDiskFullAttachments: with the whole data directory on a small tmpfs,
// uploads that do not fit answer 507 disk_full and leave no partial file,
// what is stored stays readable, and uploads work again once space is
// freed; the database is consistent afterwards.
func TestDiskFullAttachments(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (make test runs as root in CI)")
	}
	data := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=12m", "hearth-proof", data).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", data).Run() })

	h := startDaemon(t, map[string]string{"data": data})
	h.dir = data
	adminC, _ := setupAdmin(t, h.url, data, "mum", pw)
	ch := adminC.createChannel(t, map[string]any{"name": "photos"})
	ctx := context.Background()
	upload := func(name string, b []byte) (attachment, error) {
		var up struct {
			Attachment attachment `json:"attachment"`
		}
		err := adminC.send(ctx, "POST", "/api/v1/channels/"+ch.ID+"/attachments?name="+name, "application/octet-stream", bytes.NewReader(b), &up)
		return up.Attachment, err
	}
	kept := bytes.Repeat([]byte("kept "), 20000)
	a, err := upload("kept.bin", kept)
	if err != nil {
		t.Fatal(err)
	}
	adminC.must(t, "POST", "/api/v1/channels/"+ch.ID+"/messages", map[string]any{"text": "before", "attachments": []string{a.ID}}, nil)

	// Ballast leaves about 2 MiB free.
	var st struct{ free int64 }
	if out, err := exec.Command("df", "--output=avail", "-B1", data).Output(); err == nil {
		f := strings.Fields(string(out))
		st.free = parseInt(f[len(f)-1])
	}
	ballast := filepath.Join(data, "ballast")
	if err := os.WriteFile(ballast, make([]byte, max(st.free-(2<<20), 0)), 0o600); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{0xA5}, 3<<20)
	_, err = upload("big.bin", big)
	if statusOf(err) != 507 || !strings.Contains(err.Error(), "disk_full") {
		t.Fatalf("upload with no room = %v, want 507 disk_full", err)
	}
	if left, _ := filepath.Glob(filepath.Join(data, "attachments", "tmp", "*")); len(left) > 0 {
		t.Errorf("a failed upload left %v behind", left)
	}
	if left, _ := filepath.Glob(filepath.Join(data, "attachments", "*big*")); len(left) > 0 {
		t.Errorf("a failed upload left %v behind", left)
	}
	// Reads keep working.
	msgs, err := adminC.history(ctx, ch.ID)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("history while the disk is full = %d messages, %v", len(msgs), err)
	}
	var got []byte
	if err := adminC.send(ctx, "GET", "/api/v1/attachments/"+a.ID, "", nil, &got); err != nil || !bytes.Equal(got, kept) {
		t.Fatalf("download while the disk is full = %d bytes, %v", len(got), err)
	}

	// Space freed: uploads and posts work again.
	os.Remove(ballast)
	b, err := upload("big.bin", big)
	if err != nil {
		t.Fatalf("upload after space was freed: %v", err)
	}
	adminC.must(t, "POST", "/api/v1/channels/"+ch.ID+"/messages", map[string]any{"text": "after", "attachments": []string{b.ID}}, nil)
	if err := adminC.send(ctx, "GET", "/api/v1/attachments/"+b.ID, "", nil, &got); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("download after recovery = %d bytes, %v", len(got), err)
	}
	if err := h.d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Verify(filepath.Join(data, store.FileName)); err != nil {
		t.Fatalf("database after disk full: %v", err)
	}
}

func parseInt(s string) int64 {
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
	}
	return n
}
