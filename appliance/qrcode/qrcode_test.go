package qrcode_test

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"github.com/hearth-home/hearth/appliance/qrcode"
)

func TestSVGIsWellFormed(t *testing.T) {
	svg, err := qrcode.SVG("https://hearth.local/join/abc")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName xml.Name
		ViewBox string `xml:"viewBox,attr"`
	}
	if err := xml.Unmarshal(svg, &doc); err != nil || doc.XMLName.Local != "svg" {
		t.Fatalf("SVG() is not an svg document: %v", err)
	}
	if !strings.HasPrefix(doc.ViewBox, "0 0 ") {
		t.Fatalf("viewBox = %q", doc.ViewBox)
	}
}

func TestTerminalSquare(t *testing.T) {
	out, err := qrcode.Terminal("hearth")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	width := len([]rune(lines[0]))
	if width < 21 || len(lines) < width/2 {
		t.Fatalf("Terminal() = %d lines of %d, want a square", len(lines), width)
	}
}

func TestTooLong(t *testing.T) {
	if _, err := qrcode.SVG(strings.Repeat("x", qrcode.MaxLen+1)); !errors.Is(err, qrcode.ErrTooLong) {
		t.Fatalf("SVG(too long) = %v", err)
	}
}
