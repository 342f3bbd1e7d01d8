package chat

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzThumbnail feeds uploaded bytes to the thumbnail maker: whatever an
// upload holds, it must not panic, and a thumbnail it makes is a JPEG no
// larger than thumbMax on either side.
func FuzzThumbnail(f *testing.F) {
	img := image.NewNRGBA(image.Rect(0, 0, 9, 5))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	f.Add(b.Bytes())
	b.Reset()
	jpeg.Encode(&b, img, nil)
	f.Add(b.Bytes())
	b.Reset()
	gif.Encode(&b, image.NewPaletted(image.Rect(0, 0, 600, 3), []color.Color{color.Black, color.White}), nil)
	f.Add(b.Bytes())
	f.Add([]byte("GIF89a\x01\x00\x01\x00"))
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Add([]byte("not an image"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Large claimed sizes are bounded by maxImagePixels (tested with
		// real uploads); keep each fuzz run small.
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(data)); err == nil && cfg.Width*cfg.Height > 1<<20 {
			t.Skip()
		}
		dir := t.TempDir()
		src := filepath.Join(dir, "upload")
		if err := os.WriteFile(src, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s := &Service{dir: dir}
		if _, _, ok := s.thumbnail(src, "x"); !ok {
			return
		}
		th, err := os.ReadFile(s.thumbPath("x"))
		if err != nil {
			t.Fatalf("thumbnail reported made but unreadable: %v", err)
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(th))
		if err != nil || cfg.Width > thumbMax || cfg.Height > thumbMax || cfg.Width < 1 || cfg.Height < 1 {
			t.Fatalf("thumbnail %dx%d, %v", cfg.Width, cfg.Height, err)
		}
	})
}

// FuzzCleanFileName: a file name from a client is accepted only if it
// cannot climb out of a directory, hide its extension or break a line.
func FuzzCleanFileName(f *testing.F) {
	for _, s := range []string{"photo.jpg", "../etc/passwd", "a/b", `a\b`, "..", ".", " ", "evil\u202egpj.exe", "line\nbreak",
		"<img src=x onerror=alert(1)>.png", strings.Repeat("é", 201), "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := CleanFileName(name)
		if err != nil {
			return
		}
		if got == "" || got == "." || got == ".." || strings.ContainsAny(got, `/\`) || !utf8.ValidString(got) ||
			utf8.RuneCountInString(got) > 200 || got != strings.TrimSpace(got) {
			t.Fatalf("CleanFileName(%q) = %q", name, got)
		}
		for _, r := range got {
			if unicode.IsControl(r) || r == '\u202e' || r == '\u202d' {
				t.Fatalf("CleanFileName(%q) = %q keeps %U", name, got, r)
			}
		}
	})
}
