// Package qrcode draws QR codes for links people open on a phone: as SVG for
// the web UI and as block characters for a terminal.
package qrcode
