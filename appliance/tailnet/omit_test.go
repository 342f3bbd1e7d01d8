//go:build hearth_notailnet

package tailnet_test

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"

	"github.com/hearth-home/hearth/appliance/tailnet"
)

// TestOmitted: a build without the tailnet says so everywhere, and a nil
// Node is safe to call.
func TestOmitted(t *testing.T) {
	if tailnet.Built {
		t.Fatal("Built = true with hearth_notailnet")
	}
	n, err := tailnet.New(tailnet.Config{Dir: t.TempDir()})
	if !errors.Is(err, tailnet.ErrNotBuilt) || n != nil {
		t.Fatalf("New = %v, %v; want nil, ErrNotBuilt", n, err)
	}
	if err := n.Start(context.Background()); !errors.Is(err, tailnet.ErrNotBuilt) {
		t.Errorf("Start = %v", err)
	}
	if _, err := n.Listen("tcp", ":443"); !errors.Is(err, tailnet.ErrNotBuilt) {
		t.Errorf("Listen = %v", err)
	}
	if _, err := n.GetCertificate(&tls.ClientHelloInfo{ServerName: "hearth.tail1234.ts.net"}); !errors.Is(err, tailnet.ErrNotBuilt) {
		t.Errorf("GetCertificate = %v", err)
	}
	if st := n.Status(); st.State != tailnet.StateFailed || st.LastError == "" {
		t.Errorf("Status = %+v", st)
	}
	if err := n.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
}
