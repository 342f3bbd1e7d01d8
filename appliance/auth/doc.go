// Package auth owns accounts: users and their roles, first-run setup with a
// one-time token, argon2id password hashes, sessions per device (stored
// hashed, listable, revocable, with idle and absolute expiry), personal
// access tokens for scripts, invites, and sign-in throttling.
//
// It keeps its records in the store's users, names, sessions and invites
// buckets and knows nothing of HTTP.
package auth
