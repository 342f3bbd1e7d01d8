package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Address is one place this Hearth can be reached, for the Connect page.
type Address struct {
	// URL is the address to open, e.g. https://hearth.local:8443.
	URL string `json:"url"`
	// Kind is where it works: "mdns" (the LAN name), "lan" (a LAN
	// address), "tailnet" (the MagicDNS name) or "tailnet_ip".
	Kind string `json:"kind"`
	// Trust is who certifies it: "local_ca" (Hearth's own CA, which each
	// device must trust once), "public" (a CA browsers already trust:
	// ACME, the tailnet's certificate) or "none" (plain HTTP).
	Trust string `json:"trust"`
	// TrustURL is the plain-HTTP trust page for this host (with the CA
	// download), when Trust is local_ca.
	TrustURL string `json:"trust_url,omitempty"`
	// Note says what the address needs, e.g. "on the home network".
	Note string `json:"note,omitempty"`
}

func (s *Server) connectRoutes() {
	s.mux.Handle("GET /api/v1/addresses", s.signedIn(s.handleAddresses))
}

// handleAddresses lists every address Hearth can be reached at.
func (s *Server) handleAddresses(w http.ResponseWriter, r *http.Request, _ *identity) error {
	var addrs []Address
	if s.cfg.Addresses != nil {
		addrs = s.cfg.Addresses()
	}
	if addrs == nil {
		addrs = []Address{}
	}
	resp := map[string]any{"addresses": addrs, "via_tailnet": s.fromTailnet(r), "ca": s.caCert() != nil}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// withOwnOrigins lets the app page's scripts connect to Hearth's other
// addresses (connect-src), so the Connect page can tell which of them this
// browser reaches and trusts. Only Hearth's own origins are added.
func (s *Server) withOwnOrigins(csp string) string {
	if s.cfg.Addresses == nil {
		return csp
	}
	var origins []string
	for _, a := range s.cfg.Addresses() {
		u, err := url.Parse(a.URL)
		if err != nil || u.Host == "" || strings.ContainsAny(u.Host, "; ,'\"") {
			continue
		}
		o := u.Scheme + "://" + u.Host
		if !slices.Contains(origins, o) {
			origins = append(origins, o)
		}
	}
	if len(origins) == 0 {
		return csp
	}
	return strings.Replace(csp, "connect-src 'self'", "connect-src 'self' "+strings.Join(origins, " "), 1)
}
