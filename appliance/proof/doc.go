// Package proof holds Hearth's "prove it" suite: tests that hold the whole
// appliance to what a careful self-hoster would check, against the real
// binary or a whole daemon. Crash consistency under SIGKILL, an
// authorization matrix generated from the router, web attacks, relay
// abuse, fake-clock expiry, disk full, reconnects across restarts and
// network blips, and (with HEARTH_SOAK=1, `make soak`) a long load run.
//
// Every test here is in the external package proof_test; this file is the
// package's only non-test code. Lengths are chosen by environment:
// HEARTH_PROOF_CYCLES (kill cycles, default 5), HEARTH_SOAK (soak length
// as a Go duration, or 1 for ten minutes), HEARTH_SOAK_CLIENTS (1000),
// HEARTH_SOAK_RATE (messages a second, 4), HEARTH_SOAK_VOICE (voice
// participants, 20), HEARTH_SOAK_PRESENCE_SECONDS (30).
package proof
