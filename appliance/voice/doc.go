// Package voice is Hearth's voice channels: an audio SFU on pion/webrtc.
// Every participant has one PeerConnection to the appliance; the appliance
// forwards each talker's Opus RTP to the others without decoding it.
//
// It imports pion and the realtime hub's types only. The wiring point
// hands it the sockets (a [net.PacketConn] for the muxed UDP port, more
// for other addresses such as the tailnet's, and optionally a
// [net.Listener] for ICE over TCP) and hooks: CanJoin (may this user join
// this voice channel), Publish (deliver a [hub.Event]), ICEServers (TURN
// credentials for the appliance's own side of a call) and OneTalker.
// [Service.Handle] takes every voice.* client message, and
// [Service.Disconnected] ends the call of a connection that went away.
//
// # Negotiation: receive slots that grow by renegotiation
//
// The client makes the first offer (voice.join): one Opus audio m-line,
// its microphone. The appliance answers it, then makes its own offers over
// the realtime hub when the client needs more "receive slots": sendonly
// audio m-lines of the appliance's, each carrying one talker at a time.
// Talkers (unmuted, with the floor in a one-talker room) get a slot at
// every listener: a free one, else the one whose talker has been silent
// longest; only when none is left does the appliance add slots (those
// needed plus two spare) and renegotiate. Slots are never removed, so
// renegotiation happens only as a room's number of simultaneous talkers
// grows, not on every join and leave, and a listener costs one slot per
// recent talker rather than one per participant (a hundred listeners of
// one talker are a hundred outgoing streams, not ten thousand). Which
// slot carries whom is sent to the client ("tracks", by mid) whenever it
// changes; across a change the slot's sequence numbers and timestamps
// continue, so the browser's jitter buffer sees one continuous stream.
//
// Offers cross (glare) only when a client renegotiates by itself (an ICE
// restart): the appliance is the impolite peer and ignores a client offer
// while its own is unanswered; the client, the polite peer, rolls back
// and answers (the W3C "perfect negotiation" pattern). Client offers are
// rate limited (bursts of 5, then one per 2 s) and so are joins; an offer
// the client does not answer within NegotiationTimeout ends its call.
//
// # Forwarding
//
// One goroutine per talker reads its track and writes each packet to the
// slots assigned to it, rewriting SSRC, payload type, sequence number and
// timestamp, and keeping only the RFC 6464 audio level extension
// (re-numbered for the listener). Mute and the floor are enforced here:
// packets of a participant who is muted, deafened, or without the floor in
// a one-talker room are dropped (and their sequence numbers taken out, so
// listeners see no loss). Deafen stops everything to that participant.
// Audio levels of forwarded packets drive the speaking indicators
// (at least two loud packets in 100 ms turn one on, 400 ms without turn
// it off). Packets that are not the negotiated Opus, malformed, or over
// 200 packets or 80 kB a second are dropped; a microphone track replaced
// by a renegotiation is read and dropped; pion drops RTP of SSRCs it does
// not know.
//
// A participant who is not muted counts as a talker and gets a slot at
// every listener whether or not it speaks, so clients should join muted
// and unmute only while push-to-talk is held (or, with voice activity,
// keep the microphone unmuted: an open-mic room of n costs n*(n-1)
// outgoing streams). Deafen also mutes.
//
// RTCP: the appliance sends receiver reports for what it receives and
// sender reports for what it sends (pion's report interceptors), reads
// every sender's and receiver's RTCP so that nothing backs up, and counts
// the losses listeners report. No NACK, PLI or congestion feedback is
// negotiated: Opus needs none.
//
// # Failure containment
//
// Everything a client sends is checked before it touches shared state,
// and a failure ends at most that client's call: malformed SDP is refused
// (ErrBadSDP), and so is an offer with anything but Opus audio m-lines:
// video, a data channel, another codec (ErrAudioOnly; answering those as
// rejected m-lines would leave pion unable to make its own offers on that
// connection). A bad answer ends the call. ICE failure (15 s), a connection that never comes up
// (ConnectTimeout) and a vanished client (Disconnected) end the call and
// release everything it held. The floor is released when its holder
// leaves, is silent for FloorIdle, or has held it for FloorMax.
//
// The realtime protocol is described at [Service.Handle] and the message
// types ([JoinMessage], [SignalMessage], [Signal], [RoomState]).
package voice
