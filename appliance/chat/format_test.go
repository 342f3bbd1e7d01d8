package chat_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hearth-home/hearth/appliance/chat"
)

func TestFormat(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"**bold** and *it* and _it2_", "<strong>bold</strong> and <em>it</em> and <em>it2</em>"},
		{"snake_case_name stays", "snake_case_name stays"},
		{"`x < y` code", "<code>x &lt; y</code> code"},
		{"```\nfn main() {}\n```\nafter", "<pre>fn main() {}\n</pre>after"},
		{"see https://example.com/a?b=1.", `see <a href="https://example.com/a?b=1" rel="noopener noreferrer" target="_blank">https://example.com/a?b=1</a>.`},
		{"javascript:alert(1)", "javascript:alert(1)"},
		{"hi @dad!", `hi <span class="mention">@dad</span>!`},
		{"mail@example.com", "mail@example.com"},
		{"line1\nline2", "line1<br>line2"},
		{"<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"},
		{"**unclosed", "**unclosed"},
		{"** spaced **", "** spaced **"},
	}
	for _, tt := range tests {
		if got := chat.RenderHTML(chat.Format(tt.in)); got != tt.want {
			t.Errorf("Format(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

var allowedTag = regexp.MustCompile(`^</?(strong|em|code|pre|br|span|a)[ >]`)

// FuzzFormat: whatever a message says, rendering its spans produces only
// the renderer's own tags, links only to http(s), and keeps every letter of
// the text.
func FuzzFormat(f *testing.F) {
	for _, s := range []string{"**b** *i* _u_ `c`", "```x```", "https://a.b/c?d", "@mum hi", "<script>alert(1)</script>",
		"\"><img src=x onerror=alert(1)>", "javascript:alert(1)", "http://x\"onmouseover=\"alert(1)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		spans := chat.Format(text)
		html := chat.RenderHTML(spans)
		for i := strings.IndexByte(html, '<'); i >= 0; {
			if !allowedTag.MatchString(html[i:]) {
				t.Fatalf("Format(%q) rendered a foreign tag: %q", text, html)
			}
			j := strings.IndexByte(html[i+1:], '<')
			if j < 0 {
				break
			}
			i += 1 + j
		}
		for _, s := range spans {
			if s.T == chat.SpanLink && !strings.HasPrefix(s.U, "http://") && !strings.HasPrefix(s.U, "https://") {
				t.Fatalf("Format(%q) linked to %q", text, s.U)
			}
			if s.T == chat.SpanLink && strings.ContainsAny(s.U, "\"'<> ") {
				t.Fatalf("Format(%q) link %q has characters that break out of an attribute", text, s.U)
			}
		}
	})
}
