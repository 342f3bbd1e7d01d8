// Package store owns Hearth's on-disk state: one bbolt file holding typed
// records in named buckets, its schema version and ordered migrations, group
// commits for concurrent writers, and consistent online backup and verified
// restore.
//
// It is the only package that imports bbolt. Records are JSON values; callers
// see [Tx] and the generic helpers [Get], [Put] and [Each], never bbolt types.
package store
