package proof_test

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// access is who may use a route.
type access int

const (
	publicRoute   access = iota // anyone, also without a session
	signedInRoute               // any signed-in user
	adminRoute                  // admins only
	channelScoped               // signed-in members of the channel the route names
	metricsRoute                // admins, or anyone on loopback
)

// routeAccess classifies every route of the web server. A route missing
// here fails TestRouteAuthorization: a new route cannot be forgotten.
var routeAccess = map[string]access{
	"GET /healthz":                                               publicRoute,
	"GET /readyz":                                                publicRoute,
	"GET /metrics":                                               metricsRoute,
	"GET /api/v1/status":                                         publicRoute,
	"POST /api/v1/setup":                                         publicRoute,
	"POST /api/v1/auth/login":                                    publicRoute,
	"POST /api/v1/auth/logout":                                   signedInRoute,
	"GET /api/v1/me":                                             signedInRoute,
	"PATCH /api/v1/me":                                           signedInRoute,
	"POST /api/v1/me/password":                                   signedInRoute,
	"GET /api/v1/sessions":                                       signedInRoute,
	"DELETE /api/v1/sessions/{id}":                               signedInRoute,
	"POST /api/v1/tokens":                                        signedInRoute,
	"GET /api/v1/invites/{token}":                                publicRoute,
	"POST /api/v1/invites/{token}/accept":                        publicRoute,
	"GET /api/v1/qr":                                             signedInRoute,
	"GET /api/v1/ws":                                             signedInRoute,
	"GET /api/v1/admin/users":                                    adminRoute,
	"POST /api/v1/admin/users":                                   adminRoute,
	"POST /api/v1/admin/users/{id}/password":                     adminRoute,
	"POST /api/v1/admin/users/{id}/disable":                      adminRoute,
	"GET /api/v1/admin/invites":                                  adminRoute,
	"POST /api/v1/admin/invites":                                 adminRoute,
	"DELETE /api/v1/admin/invites/{id}":                          adminRoute,
	"GET /api/v1/users":                                          signedInRoute,
	"GET /api/v1/channels":                                       signedInRoute,
	"POST /api/v1/channels":                                      signedInRoute,
	"PATCH /api/v1/channels/{id}":                                channelScoped,
	"POST /api/v1/dms":                                           signedInRoute,
	"GET /api/v1/channels/{id}/messages":                         channelScoped,
	"POST /api/v1/channels/{id}/messages":                        channelScoped,
	"PATCH /api/v1/channels/{id}/messages/{seq}":                 channelScoped,
	"DELETE /api/v1/channels/{id}/messages/{seq}":                channelScoped,
	"PUT /api/v1/channels/{id}/messages/{seq}/reactions/{emoji}": channelScoped,
	"DELETE /api/v1/channels/{id}/messages/{seq}/reactions/{emoji}": channelScoped,
	"POST /api/v1/channels/{id}/read":                               channelScoped,
	"POST /api/v1/channels/{id}/attachments":                        channelScoped,
	"GET /api/v1/attachments/{id}":                                  channelScoped,
	"GET /api/v1/notifications":                                     signedInRoute,
	"GET /api/v1/search":                                            signedInRoute,
	"GET /api/v1/groups":                                            signedInRoute,
	"POST /api/v1/admin/groups":                                     adminRoute,
	"PUT /api/v1/admin/groups/{id}":                                 adminRoute,
	"GET /ca.crt":                                                   publicRoute,
	"GET /ca.mobileconfig":                                          publicRoute,
	"GET /api/v1/turn/credentials":                                  signedInRoute,
	"GET /api/v1/admin/relay":                                       adminRoute,
	"/api/":                                                         publicRoute, // the JSON 404
	"GET /{$}":                                                      publicRoute, // the app page decides what to show
	"GET /setup":                                                    publicRoute,
	"GET /login":                                                    publicRoute,
	"GET /join/{token}":                                             publicRoute,
	"GET /app":                                                      publicRoute,
	"GET /app/{rest...}":                                            publicRoute,
	"/":                                                             publicRoute, // static files
	"GET /t/{code}":                                                 publicRoute, // a guest's transfer page
	"POST /api/v1/transfer/pair":                                    publicRoute, // a guest trades a code for a ticket
	"GET /api/v1/transfer/devices":                                  signedInRoute,
	"GET /api/v1/transfer/history":                                  signedInRoute,
	"DELETE /api/v1/transfer/history":                               signedInRoute,
	"GET /api/v1/addresses":                                         signedInRoute,
	"GET /api/v1/auth/tailnet":                                      publicRoute, // who the tailnet says the caller is
	"POST /api/v1/auth/tailnet":                                     publicRoute, // sign in as that tailnet login
	"GET /api/v1/admin/tailnet/logins":                              adminRoute,
	"PUT /api/v1/admin/tailnet/logins/{login}":                      adminRoute,
	"DELETE /api/v1/admin/tailnet/logins/{login}":                   adminRoute,
}

// bodies are well-formed requests for routes whose input is checked
// before who may use them ("{}" for the rest).
var bodies = map[string]string{
	// {} answers 500: chat.OpenDM's "2 to N people" error is not a
	// sentinel the web layer maps (reported; chat/channels.go:375).
	"POST /api/v1/dms":                           `{"members":["{member}","{admin}"]}`,
	"POST /api/v1/channels/{id}/messages":        `{"text":"hello"}`,
	"PATCH /api/v1/channels/{id}/messages/{seq}": `{"text":"edited"}`,
	"POST /api/v1/channels/{id}/attachments":     "file contents",
	"PATCH /api/v1/channels/{id}":                `{"topic":"plans"}`,
	"POST /api/v1/channels/{id}/read":            `{"seq":1}`,
	"POST /api/v1/auth/login":                    `{"name":"nobody","password":"wrong"}`,
}

var queries = map[string]string{
	"POST /api/v1/channels/{id}/attachments": "?name=f.txt",
	"GET /api/v1/channels/{id}/messages":     "?limit=5",
}

// roles a request is made as.
var roles = []string{"anonymous", "guest", "member", "non-member", "admin", "revoked", "expired"}

// hiddenCodes are the answers that keep a channel's existence or content
// from someone outside it.
var hiddenCodes = []string{"channel_not_found", "not_member", "attachment_not_found", "not_found"}

// guestRoutes are the routes a paired guest's ticket opens.
var guestRoutes = []string{"GET /api/v1/ws", "GET /api/v1/turn/credentials"}

// wantGuest: a guest ticket opens its routes and public ones, and is no
// session anywhere else.
func wantGuest(pattern string, a access, r result) error {
	switch {
	case slices.Contains(guestRoutes, pattern):
		if r.status == 401 || r.status == 403 || r.status >= 500 {
			return fmt.Errorf("guest refused its own route: %d %s", r.status, r.code)
		}
	case a == publicRoute:
		return want(a, "guest", r)
	case r.status != 401:
		return fmt.Errorf("got %d %s, want 401", r.status, r.code)
	}
	return nil
}

// want says whether result r is right for a role on a route of class a.
func want(a access, role string, r result) error {
	anonymous := role == "anonymous" || role == "revoked" || role == "expired"
	switch {
	case a == publicRoute:
		if r.code == "unauthenticated" || r.code == "forbidden" || r.code == "csrf" || r.status >= 500 {
			return fmt.Errorf("public route refused: %d %s", r.status, r.code)
		}
	case anonymous:
		if r.status != 401 {
			return fmt.Errorf("got %d %s, want 401", r.status, r.code)
		}
	case a == adminRoute || a == metricsRoute:
		if role == "admin" && (r.status == 401 || r.status == 403 || r.status >= 500) {
			return fmt.Errorf("admin refused: %d %s", r.status, r.code)
		}
		if role != "admin" && r.status != 403 {
			return fmt.Errorf("got %d %s, want 403", r.status, r.code)
		}
	case a == channelScoped && role == "non-member":
		if (r.status != 403 && r.status != 404) || !slices.Contains(hiddenCodes, r.code) {
			return fmt.Errorf("outsider got %d %s, want 403/404 hiding the channel: %.200s", r.status, r.code, r.body)
		}
	default:
		if r.status == 401 || r.status >= 500 || (r.status == 403 && r.code != "not_author") || slices.Contains(hiddenCodes[:3], r.code) {
			return fmt.Errorf("got %d %s, want it served: %.200s", r.status, r.code, r.body)
		}
	}
	return nil
}

// TestRouteAuthorization runs every route of the router as every role
// and checks the outcome its class in routeAccess promises.
func TestRouteAuthorization(t *testing.T) {
	h := newHousehold(t, nil)
	// Something to point at: a message by the member in the private
	// channel, and an attachment there.
	var posted struct {
		Message message `json:"message"`
	}
	h.member.must(t, "POST", "/api/v1/channels/"+h.private.ID+"/messages", map[string]any{"text": "secret plans"}, &posted)
	var up struct {
		Attachment attachment `json:"attachment"`
	}
	if err := h.member.send(t.Context(), "POST", "/api/v1/channels/"+h.private.ID+"/attachments?name=plan.txt", "text/plain",
		strings.NewReader("the plan"), &up); err != nil {
		t.Fatal(err)
	}
	h.member.must(t, "POST", "/api/v1/channels/"+h.private.ID+"/messages", map[string]any{"text": "the plan", "attachments": []string{up.Attachment.ID}}, nil)
	victim, _ := h.admin.invite(t, "victim", pw)
	var vme struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	victim.must(t, "GET", "/api/v1/me", nil, &vme)

	// The expired role: a daemon whose sessions end after a second.
	short := startDaemon(t, map[string]string{"session-idle": "1s", "session-max": "1s"})
	setupAdmin(t, short.url, short.dir, "mum", pw)
	expired := short.signIn(t, "mum", pw)
	time.Sleep(1100 * time.Millisecond)

	fill := func(pattern string) (method, path string) {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			method, path = "GET", pattern
		}
		id := "nosuch"
		switch {
		case strings.HasPrefix(path, "/api/v1/channels/{id}"):
			id = h.private.ID
		case strings.HasPrefix(path, "/api/v1/attachments/"):
			id = up.Attachment.ID
		case strings.HasPrefix(path, "/api/v1/admin/users/"):
			id = vme.User.ID
		}
		r := strings.NewReplacer("{id}", id, "{seq}", fmt.Sprint(posted.Message.Seq), "{emoji}", url.PathEscape("👍"),
			"{token}", "nosuch", "{rest...}", "chat", "{$}", "")
		return method, r.Replace(path)
	}

	ticket := h.guestTicket(t)
	routes := h.routes(t)
	sort.Strings(routes)
	checked, missing := 0, 0
	for _, pattern := range routes {
		a, ok := routeAccess[pattern]
		if !ok {
			t.Errorf("route %q has no class in routeAccess (authz_test.go): say who may use it", pattern)
			missing++
			continue
		}
		method, path := fill(pattern)
		for _, role := range roles {
			var sess *session
			target := h.appliance
			switch role {
			case "guest":
				sess = &session{bearer: ticket}
			case "member":
				sess = h.signIn(t, "kid", pw)
			case "non-member":
				sess = h.signIn(t, "lodger", pw)
			case "admin":
				sess = h.signIn(t, "mum", pw)
			case "revoked":
				sess = h.signIn(t, "kid", pw)
				var list struct {
					Sessions []struct {
						ID      string `json:"id"`
						Current bool   `json:"current"`
					} `json:"sessions"`
				}
				r := h.call("GET", "/api/v1/sessions", sess, "")
				if err := jsonInto(r.body, &list); err != nil {
					t.Fatal(err)
				}
				for _, s := range list.Sessions {
					if s.Current {
						if r := h.call("DELETE", "/api/v1/sessions/"+s.ID, h.signIn(t, "kid", pw), ""); r.status != 204 {
							t.Fatalf("revoke = %d %s", r.status, r.code)
						}
					}
				}
			case "expired":
				sess, target = expired, short
			}
			body, ok := bodies[pattern]
			if !ok {
				body = "{}"
			}
			if method == "GET" || method == "DELETE" {
				body = ""
			}
			p := path + queries[pattern]
			body = strings.NewReplacer("{member}", h.memberID, "{admin}", h.adminID).Replace(body)
			r := target.call(method, p, sess, body)
			if role == "guest" {
				err := wantGuest(pattern, a, r)
				if err != nil {
					t.Errorf("%s as guest: %v", pattern, err)
				}
				checked++
				continue
			}
			if err := want(a, role, r); err != nil {
				t.Errorf("%s as %s: %v", pattern, role, err)
			}
			checked++
		}
	}
	t.Logf("routes × roles checked: %d routes, %d checks, %d routes unclassified",
		len(routes), checked, missing)
}
