package metrics_test

import (
	"strings"
	"testing"

	"github.com/hearth-home/hearth/appliance/metrics"
)

func TestWriteText(t *testing.T) {
	r := metrics.NewRegistry()
	reqs := r.NewCounterVec("hearth_http_requests_total", "HTTP requests by status class.", "code")
	reqs.With("2xx").Inc()
	reqs.With("2xx").Add(2)
	reqs.With("4xx").Inc()
	r.NewGaugeFunc("hearth_users", "Accounts.", func() float64 { return 3 })
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP hearth_http_requests_total HTTP requests by status class.
# TYPE hearth_http_requests_total counter
hearth_http_requests_total{code="2xx"} 3
hearth_http_requests_total{code="4xx"} 1
# HELP hearth_users Accounts.
# TYPE hearth_users gauge
hearth_users 3
`
	if b.String() != want {
		t.Fatalf("WriteText() =\n%s\nwant\n%s", b.String(), want)
	}
}
