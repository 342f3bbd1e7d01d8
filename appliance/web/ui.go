package web

import (
	"bytes"
	"io/fs"
	"net/http"
)

// The app page's routes; the page itself decides what to show.
var pageRoutes = []string{"GET /{$}", "GET /setup", "GET /login", "GET /join/{token}", "GET /app", "GET /app/{rest...}"}

func (s *Server) uiRoutes() {
	for _, p := range pageRoutes {
		s.mux.HandleFunc(p, s.servePage)
	}
	static := http.FileServerFS(s.cfg.UI)
	s.mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			s.writeError(w, r, errorf(http.StatusMethodNotAllowed, "method_not_allowed", "Only GET works here."))
			return
		}
		if r.URL.Path == "/index.html" {
			s.servePage(w, r)
			return
		}
		if _, err := fs.Stat(s.cfg.UI, r.URL.Path[1:]); err != nil {
			s.writeError(w, r, errorf(http.StatusNotFound, "not_found", "Nothing here."))
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		static.ServeHTTP(w, r)
	}))
}

// servePage serves index.html with a fresh nonce in its script tags and the
// matching policy.
func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	nonce := newNonce()
	w.Header().Set("Content-Security-Policy", s.withOwnOrigins(pageCSP(nonce)))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(bytes.ReplaceAll(s.index, []byte("{{NONCE}}"), []byte(nonce)))
}
