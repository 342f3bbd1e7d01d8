// Package tailnet joins Hearth to the household's tailnet as a node of its
// own, so members away from home reach the same UI, API, realtime hub, TURN
// and voice at https://<hostname>.<tailnet>.ts.net.
//
// A [Node] wraps an embedded Tailscale client (tsnet): it keeps its state
// (node key, certificates) in [Config.Dir], logs in with an auth key from
// the config or a file, and hands back standard types: a [net.Listener] for
// HTTPS and the realtime hub ([Node.Listen]), a [net.PacketConn] for TURN
// and voice ([Node.ListenPacket]), the tailnet's certificate for its
// *.ts.net name ([Node.GetCertificate], [Node.TLSConfig]), and the tailnet
// identity of a peer ([Node.WhoIs], [Node.IdentifyRequest]) for signing
// members in without a password. [Node.Status] says where the node is (up,
// waiting for a login or for the tailnet admin's approval, failed and why)
// for /readyz, `hearth doctor` and the admin UI.
//
// # Privacy
//
// tsnet uploads its debug logs to Tailscale's log service by default. Hearth
// does not: unless [Config.LogUpload] is set, a Node turns log upload off
// for the whole process before it starts (as `tailscaled
// --no-logs-no-support` does), deletes log buffers an earlier opted-in run
// left behind in [Config.Dir], and tells the coordination server that this
// node opted out of logs and support. A tailnet whose admin requires
// network flow logs then refuses the node; [Status.Health] and
// [Status.LastError] say so.
//
// # Build variants
//
// The package builds in two variants with the same API. By default it links
// tsnet, which adds about 13.5 MiB to a stripped amd64 binary with the
// ts_omit_* tags of the Makefile (17.5 MiB without them). Built with the tag
// hearth_notailnet it links none of Tailscale: [Built] is false and [New]
// returns [ErrNotBuilt], for boxes too small to spare that. A build whose
// ts_omit_* tags remove what a Node needs (netstack, ipnbus, acme, serve,
// peerapiclient) gets a clear error from New; one without logtail refuses
// [Config.LogUpload].
//
// It is the only package that imports tailscale.com. Its test helper,
// package tailnettest, runs an in-process coordination server and DERP
// relay on loopback and the tests inside a private network namespace, so
// they never leave the machine.
package tailnet
