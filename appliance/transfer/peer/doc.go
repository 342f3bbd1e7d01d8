// Package peer is Hearth's Go transfer peer, used by `hearth send` and
// `hearth receive`: the data-channel protocol of PROTOCOL.md section 3
// (manifest, want/skip, 64 KiB binary chunks under bufferedAmount flow
// control, SHA-256 end to end, acks every MiB, resume from the last ack,
// safe file names written as .hearth-part files and renamed when verified)
// over pion/webrtc, and the transfer.* signaling over the realtime hub.
package peer
