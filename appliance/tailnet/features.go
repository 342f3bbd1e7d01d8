//go:build !hearth_notailnet

package tailnet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"tailscale.com/envknob"
	"tailscale.com/feature/buildfeatures"
	"tailscale.com/logtail"
)

// checkFeatures refuses a build whose ts_omit_* tags removed what a Node
// cannot work without (some of it tsnet's feature list does not say: acme
// needs serve, and Close needs peerapiclient), with a clear error rather
// than a crash later.
func checkFeatures() error {
	for _, f := range []struct {
		has bool
		tag string
	}{
		{buildfeatures.HasNetstack, "netstack"}, {buildfeatures.HasIPNBus, "ipnbus"}, {buildfeatures.HasACME, "acme"},
		{buildfeatures.HasServe, "serve"}, {buildfeatures.HasPeerAPIClient, "peerapiclient"},
	} {
		if !f.has {
			return fmt.Errorf("tailnet: this build omits tsnet's %s feature (built with ts_omit_%s), which Hearth needs", f.tag, f.tag)
		}
	}
	return nil
}

// checkLogUpload refuses LogUpload when it cannot be honoured: the binary
// omits tsnet's log uploader, or an earlier Node turned uploads off for the
// process.
func checkLogUpload(want bool) error {
	switch {
	case !want:
		return nil
	case !buildfeatures.HasLogTail:
		return errors.New("tailnet log upload: this build omits it (built with the ts_omit_logtail tag)")
	case envknob.NoLogsNoSupport():
		return errors.New("tailnet log upload: it was turned off earlier in this process; restart Hearth to turn it on")
	}
	return nil
}

// disableLogUpload turns tsnet's log upload off for the process, as
// `tailscaled --no-logs-no-support` does: nothing is buffered or sent, and
// the coordination server is told this node opted out of logs (and
// support). Logs an earlier opted-in run buffered in dir are deleted, so
// they are not sent later either.
func disableLogUpload(dir string) error {
	logtail.Disable()
	envknob.SetNoLogsNoSupport()
	// tsnet buffers logs for upload in dir/tailscaled.log{1,2}.txt.
	old, _ := filepath.Glob(filepath.Join(dir, "tailscaled.log*.txt"))
	for _, f := range old {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delete tailnet log buffer: %w", err)
		}
	}
	return nil
}
