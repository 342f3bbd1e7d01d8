package chat

import (
	"net/url"
	"regexp"
	"strings"
)

// Span is one piece of formatted message text. Clients render each span as
// text inside an element of its kind, never as markup, so no message can
// inject HTML or script.
type Span struct {
	T string `json:"t"`           // text, b, i, code, pre, link, mention, br
	V string `json:"v"`           // the text shown
	U string `json:"u,omitempty"` // link target (http or https only)
}

// Span kinds.
const (
	SpanText    = "text"
	SpanBold    = "b"
	SpanItalic  = "i"
	SpanCode    = "code"
	SpanPre     = "pre"
	SpanLink    = "link"
	SpanMention = "mention"
	SpanBreak   = "br"
)

var (
	linkRE  = regexp.MustCompile(`https?://[^\s<>"'` + "`" + `]+`)
	inlines = []struct {
		delim string
		kind  string
	}{{"`", SpanCode}, {"**", SpanBold}, {"*", SpanItalic}, {"_", SpanItalic}}
)

// Format turns message text into spans: ```code blocks```, `code`,
// **bold**, *italic* or _italic_, http(s) links and @mentions. Formatting
// does not nest; what is not formatting stays text.
func Format(text string) []Span {
	var out []Span
	for text != "" {
		i := strings.Index(text, "```")
		if i < 0 {
			out = formatInline(out, text)
			break
		}
		j := strings.Index(text[i+3:], "```")
		if j < 0 {
			out = formatInline(out, text)
			break
		}
		out = formatInline(out, text[:i])
		code := strings.TrimPrefix(text[i+3:i+3+j], "\n")
		out = append(out, Span{T: SpanPre, V: code})
		text = strings.TrimPrefix(text[i+3+j+3:], "\n")
	}
	return merge(out)
}

func formatInline(out []Span, text string) []Span {
	for len(text) > 0 {
		// The earliest opening delimiter with a closing one on the same
		// line wins.
		best, kind, dl, end := -1, "", 0, 0
		for _, in := range inlines {
			i := strings.Index(text, in.delim)
			if i < 0 || (best >= 0 && i >= best) {
				continue
			}
			rest := text[i+len(in.delim):]
			j := strings.Index(rest, in.delim)
			if j <= 0 || strings.Contains(rest[:j], "\n") || strings.TrimSpace(rest[:j]) != rest[:j] {
				continue
			}
			if in.delim == "_" && i > 0 && isWord(text[i-1]) { // snake_case stays text
				continue
			}
			best, kind, dl, end = i, in.kind, len(in.delim), i+len(in.delim)+j
		}
		if best < 0 {
			return plain(out, text)
		}
		out = plain(out, text[:best])
		out = append(out, Span{T: kind, V: text[best+dl : end]})
		text = text[end+dl:]
	}
	return out
}

func isWord(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// plain splits unformatted text into text, links, mentions and breaks.
func plain(out []Span, text string) []Span {
	for len(text) > 0 {
		loc := linkRE.FindStringIndex(text)
		seg := text
		if loc != nil {
			seg = text[:loc[0]]
		}
		out = mentionsAndBreaks(out, seg)
		if loc == nil {
			return out
		}
		link := strings.TrimRight(text[loc[0]:loc[1]], ".,;:!?)")
		if u, err := url.Parse(link); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			out = append(out, Span{T: SpanLink, V: link, U: u.String()})
		} else {
			out = append(out, Span{T: SpanText, V: link})
		}
		text = text[loc[0]+len(link):]
	}
	return out
}

func mentionsAndBreaks(out []Span, text string) []Span {
	for i, line := range strings.Split(text, "\n") {
		if i > 0 {
			out = append(out, Span{T: SpanBreak})
		}
		for len(line) > 0 {
			loc := mentionRE.FindStringSubmatchIndex(line)
			if loc == nil {
				out = append(out, Span{T: SpanText, V: line})
				break
			}
			at := loc[2] - 1 // the @
			if at > 0 {
				out = append(out, Span{T: SpanText, V: line[:at]})
			}
			out = append(out, Span{T: SpanMention, V: line[at:loc[3]]})
			line = line[loc[3]:]
		}
	}
	return out
}

// merge joins neighbouring text spans.
func merge(in []Span) []Span {
	var out []Span
	for _, s := range in {
		if s.T == SpanText && s.V == "" {
			continue
		}
		if n := len(out); n > 0 && s.T == SpanText && out[n-1].T == SpanText {
			out[n-1].V += s.V
			continue
		}
		out = append(out, s)
	}
	return out
}

// RenderHTML renders spans as HTML with every piece of text escaped. The
// web app builds DOM nodes the same way; this is for tests and previews.
func RenderHTML(spans []Span) string {
	var b strings.Builder
	esc := func(s string) string {
		return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;").Replace(s)
	}
	for _, s := range spans {
		switch s.T {
		case SpanBold, SpanItalic, SpanCode, SpanPre:
			tag := map[string]string{SpanBold: "strong", SpanItalic: "em", SpanCode: "code", SpanPre: "pre"}[s.T]
			b.WriteString("<" + tag + ">" + esc(s.V) + "</" + tag + ">")
		case SpanLink:
			b.WriteString(`<a href="` + esc(s.U) + `" rel="noopener noreferrer" target="_blank">` + esc(s.V) + "</a>")
		case SpanMention:
			b.WriteString(`<span class="mention">` + esc(s.V) + "</span>")
		case SpanBreak:
			b.WriteString("<br>")
		default:
			b.WriteString(esc(s.V))
		}
	}
	return b.String()
}
