package qrcode

import (
	"errors"
	"fmt"
	"strings"

	"rsc.io/qr"
)

// MaxLen is the longest text encoded; links Hearth makes are far shorter.
const MaxLen = 1024

// ErrTooLong is returned for text over MaxLen bytes.
var ErrTooLong = errors.New("text too long for a QR code")

const quiet = 4 // modules of white border the standard asks for

func encode(text string) (*qr.Code, error) {
	if len(text) > MaxLen {
		return nil, ErrTooLong
	}
	c, err := qr.Encode(text, qr.M)
	if err != nil {
		return nil, fmt.Errorf("encode QR code: %w", err)
	}
	return c, nil
}

// SVG returns an SVG image of text's QR code, black on white, one unit per
// module with a quiet zone, scaling to whatever size it is shown at.
func SVG(text string) ([]byte, error) {
	c, err := encode(text)
	if err != nil {
		return nil, err
	}
	n := c.Size + 2*quiet
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges">`, n, n)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n)
	for y := 0; y < c.Size; y++ {
		for x := 0; x < c.Size; {
			if !c.Black(x, y) {
				x++
				continue
			}
			run := 1
			for c.Black(x+run, y) {
				run++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", x+quiet, y+quiet, run, run)
			x += run
		}
	}
	b.WriteString(`"/></svg>`)
	return []byte(b.String()), nil
}

// Terminal returns text's QR code drawn with half-block characters, two
// modules per character row, dark modules as spaces on a light border so it
// scans on dark and light terminals alike.
func Terminal(text string) (string, error) {
	c, err := encode(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	const q = 2
	for y := -q; y < c.Size+q; y += 2 {
		for x := -q; x < c.Size+q; x++ {
			top, bottom := !c.Black(x, y), !c.Black(x, y+1)
			if y+1 >= c.Size+q {
				bottom = false
			}
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteString(" ")
			}
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}
