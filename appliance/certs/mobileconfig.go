package certs

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MobileConfig returns an Apple configuration profile (.mobileconfig, an
// unsigned XML property list) that installs the CA certificate in caPEM as a
// trusted root on iOS, iPadOS and macOS. name is the appliance's name as the
// profile shows it ("hearth"). The profile's identifiers derive from the
// certificate, so downloading it again replaces rather than duplicates it.
// On iOS the person must afterwards turn on full trust under Settings >
// General > About > Certificate Trust Settings. Serve it as
// application/x-apple-aspen-config.
func MobileConfig(caPEM []byte, name string) ([]byte, error) {
	ca, err := parseCACert(caPEM)
	if err != nil {
		return nil, fmt.Errorf("mobileconfig: CA certificate: %w", err)
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 || !utf8.ValidString(name) || strings.ContainsFunc(name, isControl) {
		return nil, errors.New("mobileconfig: the name must be 1 to 64 printable characters")
	}
	sum := sha256.Sum256(ca.Raw)
	id := fmt.Sprintf("%X", sum[:8])
	rootUUID, profileUUID := uuidFrom(sum[:16]), uuidFrom(sum[16:])

	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString(`<plist version="1.0">` + "\n<dict>\n")
	b.WriteString("\t<key>PayloadContent</key>\n\t<array>\n\t\t<dict>\n")
	str(&b, 3, "PayloadCertificateFileName", "hearth-ca.crt")
	b.WriteString("\t\t\t<key>PayloadContent</key>\n\t\t\t<data>")
	b.WriteString(base64.StdEncoding.EncodeToString(ca.Raw))
	b.WriteString("</data>\n")
	str(&b, 3, "PayloadDescription", "Adds Hearth's certificate authority ("+name+") as a trusted root.")
	str(&b, 3, "PayloadDisplayName", ca.Subject.CommonName)
	str(&b, 3, "PayloadIdentifier", "home.hearth.ca."+id+".root")
	str(&b, 3, "PayloadType", "com.apple.security.root")
	str(&b, 3, "PayloadUUID", rootUUID)
	b.WriteString("\t\t\t<key>PayloadVersion</key>\n\t\t\t<integer>1</integer>\n")
	b.WriteString("\t\t</dict>\n\t</array>\n")
	str(&b, 1, "PayloadDescription", "Lets this device open Hearth ("+name+") over HTTPS without warnings. "+
		"After installing, turn on full trust in Settings > General > About > Certificate Trust Settings. "+
		"Certificate SHA-256: "+Fingerprint(ca.Raw))
	str(&b, 1, "PayloadDisplayName", "Hearth certificate authority ("+name+")")
	str(&b, 1, "PayloadIdentifier", "home.hearth.ca."+id)
	b.WriteString("\t<key>PayloadRemovalDisallowed</key>\n\t<false/>\n")
	str(&b, 1, "PayloadType", "Configuration")
	str(&b, 1, "PayloadUUID", profileUUID)
	b.WriteString("\t<key>PayloadVersion</key>\n\t<integer>1</integer>\n")
	b.WriteString("</dict>\n</plist>\n")
	return b.Bytes(), nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// str writes a <key>/<string> pair, escaping the value.
func str(b *bytes.Buffer, indent int, key, value string) {
	tabs := strings.Repeat("\t", indent)
	b.WriteString(tabs + "<key>" + key + "</key>\n" + tabs + "<string>")
	xml.EscapeText(b, []byte(value))
	b.WriteString("</string>\n")
}

// uuidFrom formats 16 bytes as an RFC 9562 version 8 (custom) UUID.
func uuidFrom(p []byte) string {
	var u [16]byte
	copy(u[:], p)
	u[6] = u[6]&0x0f | 0x80
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
