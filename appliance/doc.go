// Package appliance holds no code of its own: its subdirectories are
// Hearth's service packages, one concern each. Its test enforces the import
// rules between them: each heavy library has exactly one importer (its
// adapter), adapters import no other Hearth package, and imports flow one
// way, from cli through daemon and web to the feature packages, auth and
// store.
package appliance
