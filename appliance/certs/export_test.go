package certs

// Internals for the external tests.
var (
	EncodeRecord = encodeRecord
	DecodeRecord = decodeRecord
	ParseCAKey   = parseCAKey
	ParseCACert  = parseCACert
)

// Storage keys of the local CA and its certificates.
const (
	CACertKey      = caCertKey
	CAKeyKey       = caKeyKey
	LocalIssuerKey = localIssuerKey
)
