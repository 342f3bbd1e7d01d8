package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/config"
)

// transfer_code_ttl defaults to ten minutes, shows in `config print`, and
// takes only 1m to 24h.
func TestTransferCodeTTL(t *testing.T) {
	c, err := config.Parse("", config.Host{})
	if err != nil {
		t.Fatal(err)
	}
	if c.TransferCodeTTL != 10*time.Minute {
		t.Fatalf("default = %v, want 10m", c.TransferCodeTTL)
	}
	var out strings.Builder
	if err := c.WriteTOML(&out); err != nil || !strings.Contains(out.String(), `transfer_code_ttl = "10m0s"`) {
		t.Fatalf("config print lacks transfer_code_ttl:\n%s", out.String())
	}
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{`"5m"`, 5 * time.Minute, ""},
		{`"1m"`, time.Minute, ""},
		{`"24h"`, 24 * time.Hour, ""},
		{`"30s"`, 0, "from 1m0s to 24h0m0s"},
		{`"25h"`, 0, "from 1m0s to 24h0m0s"},
		{`"-5m"`, 0, "positive"},
		{`"soon"`, 0, "want a duration"},
		{`5`, 0, "quoted string"},
	} {
		c, err := config.Parse("transfer_code_ttl = "+tc.in+"\n", config.Host{})
		switch {
		case tc.err == "" && (err != nil || c.TransferCodeTTL != tc.want):
			t.Errorf("transfer_code_ttl = %s: %v, %v; want %v", tc.in, c, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "transfer_code_ttl")):
			t.Errorf("transfer_code_ttl = %s: error %v, want one naming the key and saying %q", tc.in, err, tc.err)
		}
	}
}
