// Package tailnettest runs a tailnet on loopback for tests: an in-process
// coordination server (Tailscale's testcontrol) and DERP relay with STUN,
// and client nodes (tsnet) that play the household's devices. Nothing
// leaves the machine: [Isolate] re-executes the test in a private network
// namespace that has only loopback, and [StartControl] refuses to run
// anywhere else.
//
//	func TestOverTheTailnet(t *testing.T) {
//		if !tailnettest.Isolate(t) {
//			return // ran in the namespace; its outcome is this test's
//		}
//		ctl := tailnettest.StartControl(t, tailnettest.ControlConfig{})
//		// Hearth's node: tailnet.New(tailnet.Config{ControlURL: ctl.URL, ...})
//		phone := ctl.NewClient(t, "alices-phone")
//		resp, err := phone.HTTPClient().Get("http://hearth/healthz")
//		...
//	}
//
// It is built only without the hearth_notailnet tag.
package tailnettest
