// Package chat owns the household's conversations: public and private
// channels, direct messages, user groups, messages with replies, reactions,
// edits and attachments, read positions and unread counts, mentions and
// notifications, and search.
//
// Every change is committed together with a realtime event in one store
// transaction, so a client that reconnects with its last event ID gets
// exactly what it missed, from the store. Membership lives in memory as
// well, so the hub can check who may see an event without a read.
package chat
