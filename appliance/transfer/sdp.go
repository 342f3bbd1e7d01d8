package transfer

import "strings"

// isRelayCandidate reports whether an ICE candidate line (with or without
// the "candidate:" or "a=candidate:" prefix) is of type relay. The type
// is the token after "typ" (RFC 8839 section 5.1); a line without one is
// not a relay candidate.
func isRelayCandidate(line string) bool {
	f := strings.Fields(line)
	// foundation component transport priority address port "typ" type
	for i := 6; i+1 < len(f); i++ {
		if f[i] == "typ" {
			return f[i+1] == "relay"
		}
	}
	return false
}

// relayOnlySDP removes every a=candidate line that is not a relay
// candidate, keeping the rest of the description byte for byte. Host
// addresses can also appear in c= and a=rtcp lines; those are cleared to
// the unspecified address so a description reveals no local address.
func relayOnlySDP(sdp string) string {
	var b strings.Builder
	b.Grow(len(sdp))
	rest := sdp
	for rest != "" {
		line, next, found := strings.Cut(rest, "\n")
		rest = next
		text := strings.TrimSuffix(line, "\r")
		keep := true
		switch {
		case strings.HasPrefix(text, "a=candidate:"):
			keep = isRelayCandidate(text)
		case strings.HasPrefix(text, "c=IN IP4 ") && !strings.HasSuffix(text, " 0.0.0.0"):
			line = strings.Replace(line, text, "c=IN IP4 0.0.0.0", 1)
		case strings.HasPrefix(text, "c=IN IP6 ") && !strings.HasSuffix(text, " ::"):
			line = strings.Replace(line, text, "c=IN IP6 ::", 1)
		}
		if keep {
			b.WriteString(line)
			if found {
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}
