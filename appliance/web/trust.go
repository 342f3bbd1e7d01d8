package web

import (
	"bytes"
	"html/template"
	"net"
	"net/http"
	"strconv"

	"github.com/hearth-home/hearth/appliance/qrcode"
)

// The plain-HTTP port serves only what a device needs before it trusts
// Hearth's certificate: a page explaining how, the CA certificate (also as
// an iOS profile), and redirects to HTTPS for everything else.

func (s *Server) trustRoutes() {
	s.mux.Handle("GET /ca.crt", s.public(s.handleCACert))
	s.mux.Handle("GET /ca.mobileconfig", s.public(s.handleMobileConfig))
}

func (s *Server) handleCACert(w http.ResponseWriter, r *http.Request, _ *identity) error {
	pem := s.caCert()
	if pem == nil {
		return errorf(http.StatusNotFound, "no_ca", "This Hearth does not use its own certificate authority.")
	}
	w.Header().Set("Content-Type", "application/x-x509-ca-cert")
	w.Header().Set("Content-Disposition", `attachment; filename="`+s.cfg.Name+`-ca.crt"`)
	_, err := w.Write(pem)
	return err
}

func (s *Server) handleMobileConfig(w http.ResponseWriter, r *http.Request, _ *identity) error {
	if s.cfg.MobileConfig == nil || s.caCert() == nil {
		return errorf(http.StatusNotFound, "no_ca", "This Hearth does not use its own certificate authority.")
	}
	b, err := s.cfg.MobileConfig()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", `attachment; filename="`+s.cfg.Name+`.mobileconfig"`)
	_, err = w.Write(b)
	return err
}

func (s *Server) caCert() []byte {
	if s.cfg.CACert == nil {
		return nil
	}
	return s.cfg.CACert()
}

// PlainHandler is the handler for the plain-HTTP port when HTTPS is on.
func (s *Server) PlainHandler(httpsPort int) http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	m.Handle("GET /ca.crt", s.public(s.handleCACert))
	m.Handle("GET /ca.mobileconfig", s.public(s.handleMobileConfig))
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { s.trustPage(w, r, httpsPort) })
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, httpsURL(r, httpsPort)+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.securityHeaders(w.Header())
		m.ServeHTTP(w, r)
	})
}

func httpsURL(r *http.Request, port int) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if port != 443 {
		host = net.JoinHostPort(host, strconv.Itoa(port))
	} else if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		host = "[" + host + "]"
	}
	return "https://" + host
}

var trustTmpl = template.Must(template.New("trust").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Trust {{.Name}}</title>
<style nonce="{{.Nonce}}">
:root{color-scheme:light dark;--bg:#fbf7f2;--fg:#2b2420;--muted:#6d625a;--card:#fff;--accent:#c2562a}
@media (prefers-color-scheme:dark){:root{--bg:#1d1815;--fg:#f3ece6;--muted:#b5a89e;--card:#2a231f;--accent:#e8834f}}
body{margin:0;font:16px/1.5 system-ui,sans-serif;background:var(--bg);color:var(--fg)}
main{max-width:40rem;margin:0 auto;padding:1.5rem}
h1{font-size:1.6rem;margin:.2rem 0 1rem}
.card{background:var(--card);border-radius:12px;padding:1rem 1.25rem;margin:1rem 0;box-shadow:0 1px 3px #0002}
.btn{display:inline-block;background:var(--accent);color:#fff;text-decoration:none;padding:.6rem 1rem;border-radius:8px;margin:.25rem .5rem .25rem 0}
.muted{color:var(--muted);font-size:.9rem}
details{margin:.5rem 0}summary{cursor:pointer;font-weight:600}
.qr{width:11rem;height:11rem;background:#fff;padding:.5rem;border-radius:8px}
code{word-break:break-all}
</style></head><body><main>
<h1>Trust {{.Name}} on this device</h1>
<p>{{.Name}} keeps your household's chat, calls and files on this box. Its connections are encrypted with a
certificate from its own small authority. Install that authority once on each device, then open Hearth securely.</p>
<div class="card">
<a class="btn" href="/ca.crt">Download the certificate</a>
<a class="btn" href="/ca.mobileconfig">iPhone / iPad profile</a>
<p class="muted">Fingerprint check: the file is the certificate of “Hearth local CA” on {{.Name}}.</p>
<details><summary>iPhone and iPad</summary><ol><li>Tap “iPhone / iPad profile” and allow the download.</li>
<li>Settings → Profile Downloaded → Install.</li><li>Settings → General → About → Certificate Trust Settings → turn on full trust for “Hearth local CA”.</li></ol></details>
<details><summary>Android</summary><ol><li>Download the certificate.</li><li>Settings → Security → Encryption &amp; credentials → Install a certificate → CA certificate, and pick the file.</li></ol></details>
<details><summary>Windows</summary><ol><li>Download and open the certificate → Install Certificate → Current User.</li>
<li>Place it in “Trusted Root Certification Authorities”, finish, and restart the browser.</li></ol></details>
<details><summary>Mac</summary><ol><li>Download and open the certificate; Keychain Access opens.</li><li>Double-click “Hearth local CA” → Trust → “Always Trust”.</li></ol></details>
<details><summary>Linux (Chrome, Firefox)</summary><ol><li>Chrome: Settings → Privacy and security → Security → Manage certificates → Authorities → Import.</li>
<li>Firefox: Settings → Privacy &amp; Security → Certificates → View Certificates → Authorities → Import, tick “websites”.</li></ol></details>
</div>
<div class="card">
<p>Then open <a href="{{.URL}}">{{.URL}}</a>.</p>
<a class="btn" href="{{.URL}}">Continue to {{.Name}}</a>
<p class="muted">On a phone, scan this code to open this page there:</p>
<img class="qr" alt="QR code for this page" src="data:image/svg+xml;base64,{{.QR}}">
</div>
</main></body></html>
`))

func (s *Server) trustPage(w http.ResponseWriter, r *http.Request, httpsPort int) {
	nonce := newNonce()
	page := "http://" + r.Host + "/"
	var qr string
	if svg, err := qrcode.SVG(page); err == nil {
		qr = base64Std(svg)
	}
	var b bytes.Buffer
	err := trustTmpl.Execute(&b, map[string]any{"Name": s.cfg.Name, "URL": httpsURL(r, httpsPort) + "/", "QR": qr, "Nonce": nonce})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+nonce+"'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
}
