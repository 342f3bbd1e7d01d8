// Package transfer is the appliance's side of Hearth's file transfer: it
// introduces a sender and a receiver and relays their WebRTC signaling
// over the realtime hub, as PROTOCOL.md (in this directory) describes.
// File bytes never pass through it.
//
// A [Service] holds the live transfers in memory. [Service.Handle] takes
// every transfer.* client message: it checks size, rate, freshness
// (timestamp and nonce) and the caller's part in the transfer, then
// delivers server events to the sessions concerned through the Publish
// hook, each carrying a server-attested "from" party. For relay-only
// transfers it drops every ICE candidate that is not a relay candidate,
// in candidate messages and inside SDP.
//
// Guests: an offer with guest: true gets a single-use pairing code;
// [Service.Pair] trades it for a guest ticket, and [Service.Guest] turns
// a ticket into the hub client a guest connects as (user "guest:<id>",
// allowed only that transfer's messages).
//
// History: each member's finished transfers are kept in the store's
// transfers bucket ([Service.History], [Service.ClearHistory]).
//
// [Service.Run] forgets transfers nobody touched for an hour, accepted
// transfers whose party stayed away for ten minutes, and guest offers
// whose code expired, sending transfer.gone to the parties.
//
// It imports the hub's types, the store and nothing else of Hearth's; the
// wiring point hands it the hooks (Publish, Online, Device, Disconnect).
package transfer
