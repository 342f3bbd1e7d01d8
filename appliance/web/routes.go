package web

import (
	"net/http"
	"slices"
)

// routeMux is the server's ServeMux, remembering its patterns so that
// tests can hold every route to an authorization rule (appliance/proof).
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func newRouteMux() *routeMux { return &routeMux{ServeMux: http.NewServeMux()} }

// Handle registers h for pattern.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

// HandleFunc registers f for pattern.
func (m *routeMux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.HandleFunc(pattern, f)
}

// Routes lists the pattern of every route the server answers ("GET
// /api/v1/me", "/api/", ...), in the order they were registered.
func (s *Server) Routes() []string { return slices.Clone(s.mux.patterns) }
