package chat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // decoders for thumbnails
	"image/jpeg"
	_ "image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/store"
	"golang.org/x/image/draw"
)

// Attachment is a file uploaded to a channel.
type Attachment struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Type    string    `json:"type"`
	Size    int64     `json:"size"`
	Owner   string    `json:"owner"`
	Channel string    `json:"channel"`
	Seq     uint64    `json:"seq,omitempty"` // 0 until posted
	Created time.Time `json:"created"`
	Width   int       `json:"width,omitempty"`
	Height  int       `json:"height,omitempty"`
	Thumb   bool      `json:"thumb,omitempty"`
}

const (
	thumbMax       = 480      // pixels, the longer side
	maxImagePixels = 50 << 20 // refuse to decode larger images (bombs)
	pendingKeep    = 24 * time.Hour
)

// CleanFileName checks a file name from a client.
func CleanFileName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || name == "." || name == ".." || utf8.RuneCountInString(name) > 200 || !utf8.ValidString(name) ||
		strings.ContainsAny(name, `/\`) {
		return "", ErrBadFileName
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == '\u202e' || r == '\u202d' {
			return "", ErrBadFileName
		}
	}
	return name, nil
}

func (s *Service) path(id string) string      { return filepath.Join(s.dir, id) }
func (s *Service) thumbPath(id string) string { return filepath.Join(s.dir, id+".thumb.jpg") }

// usage sums the bytes of a user's attachments.
func usage(tx *store.Tx, userID string) (int64, error) {
	var n int64
	err := store.Each(tx, store.BucketAttachments, "", func(_ string, a Attachment) error {
		if a.Owner == userID {
			n += a.Size
		}
		return nil
	})
	return n, err
}

// Upload stores a file for a channel the user may post to. It streams
// straight to disk, stops at the size limit or the user's quota, and
// leaves nothing behind on failure. The attachment is pending until a
// message claims it.
func (s *Service) Upload(ctx context.Context, user auth.User, channelID, name string, body io.Reader) (Attachment, error) {
	if s.dir == "" {
		return Attachment{}, errors.New("attachments are not enabled")
	}
	name, err := CleanFileName(name)
	if err != nil {
		return Attachment{}, err
	}
	if _, err := s.channel(user.ID, channelID); err != nil {
		return Attachment{}, err
	}
	var used int64
	if err := s.st.View(func(tx *store.Tx) error { used, err = usage(tx, user.ID); return err }); err != nil {
		return Attachment{}, err
	}
	room := min(s.limit, s.quota-used)
	if room <= 0 {
		return Attachment{}, ErrQuota
	}
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "upload-*")
	if err != nil {
		return Attachment{}, fmt.Errorf("store upload: %w", diskErr(err))
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	head := make([]byte, 512)
	n, err := io.ReadFull(body, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return Attachment{}, fmt.Errorf("receive upload: %w", err)
	}
	head = head[:n]
	written, err := io.Copy(tmp, io.LimitReader(io.MultiReader(bytes.NewReader(head), body), room+1))
	if err != nil {
		return Attachment{}, fmt.Errorf("store upload: %w", diskErr(err))
	}
	if written > room {
		if room < s.limit {
			return Attachment{}, ErrQuota
		}
		return Attachment{}, ErrTooLarge
	}
	if err := tmp.Sync(); err != nil {
		return Attachment{}, fmt.Errorf("store upload: %w", diskErr(err))
	}
	a := Attachment{ID: newID(12), Name: name, Type: http.DetectContentType(head), Size: written, Owner: user.ID,
		Channel: channelID, Created: s.now().UTC()}
	if strings.HasPrefix(a.Type, "image/") {
		a.Width, a.Height, a.Thumb = s.thumbnail(tmp.Name(), a.ID)
	}
	if err := tmp.Close(); err != nil {
		return Attachment{}, fmt.Errorf("store upload: %w", diskErr(err))
	}
	if err := os.Rename(tmp.Name(), s.path(a.ID)); err != nil {
		return Attachment{}, fmt.Errorf("store upload: %w", err)
	}
	err = s.st.Update(func(tx *store.Tx) error {
		used, err := usage(tx, user.ID)
		if err != nil {
			return err
		}
		if used+a.Size > s.quota {
			return ErrQuota
		}
		return store.Put(tx, store.BucketAttachments, a.ID, a)
	})
	if err != nil {
		s.removeFiles([]string{a.ID})
		return Attachment{}, err
	}
	ok = true
	return a, nil
}

func diskErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", store.ErrNoSpace, err)
	}
	return err
}

// thumbnail writes a small JPEG of an image and returns its size; images
// too large to decode safely get none.
func (s *Service) thumbnail(src, id string) (w, h int, ok bool) {
	f, err := os.Open(src)
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxImagePixels {
		return cfg.Width, cfg.Height, false
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return cfg.Width, cfg.Height, false
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return cfg.Width, cfg.Height, false
	}
	tw, th := cfg.Width, cfg.Height
	if tw > thumbMax || th > thumbMax {
		if tw >= th {
			tw, th = thumbMax, max(1, th*thumbMax/cfg.Width)
		} else {
			tw, th = max(1, tw*thumbMax/cfg.Height), thumbMax
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	draw.Draw(dst, dst.Bounds(), image.White, image.Point{}, draw.Src)
	draw.ApproxBiLinear.Scale(dst, dst.Bounds(), img, img.Bounds(), draw.Over, nil)
	err = store.WriteFileAtomic(s.thumbPath(id), 0o600, func(w io.Writer) error {
		return jpeg.Encode(w, dst, &jpeg.Options{Quality: 80})
	})
	return cfg.Width, cfg.Height, err == nil
}

// claimAttachment attaches a pending upload of owner to a message.
func claimAttachment(tx *store.Tx, id, owner, channelID string, seq uint64) (Attachment, error) {
	a, ok, err := store.Get[Attachment](tx, store.BucketAttachments, id)
	if err != nil {
		return Attachment{}, err
	}
	if !ok || a.Owner != owner || a.Channel != channelID || a.Seq != 0 {
		return Attachment{}, ErrNoAttachment
	}
	a.Seq = seq
	return a, store.Put(tx, store.BucketAttachments, id, a)
}

// OpenAttachment returns an attachment the user may read and its file (or
// thumbnail). The caller closes the file.
func (s *Service) OpenAttachment(userID, id string, thumb bool) (Attachment, *os.File, error) {
	var a Attachment
	err := s.st.View(func(tx *store.Tx) error {
		var ok bool
		var err error
		a, ok, err = store.Get[Attachment](tx, store.BucketAttachments, id)
		if err == nil && !ok {
			err = ErrNoAttachment
		}
		return err
	})
	if err != nil {
		return Attachment{}, nil, err
	}
	if !s.CanRead(userID, a.Channel) || (a.Seq == 0 && a.Owner != userID) {
		return Attachment{}, nil, ErrNoAttachment
	}
	p := s.path(a.ID)
	if thumb {
		if !a.Thumb {
			return Attachment{}, nil, ErrNoAttachment
		}
		p = s.thumbPath(a.ID)
	}
	f, err := os.Open(p)
	if err != nil {
		return Attachment{}, nil, fmt.Errorf("open attachment %s: %w", a.ID, err)
	}
	return a, f, nil
}

func (s *Service) removeFiles(ids []string) {
	for _, id := range ids {
		os.Remove(s.path(id))
		os.Remove(s.thumbPath(id))
	}
}

// cleanTemp removes uploads cut off by a crash or restart.
func (s *Service) cleanTemp() {
	ents, _ := os.ReadDir(filepath.Join(s.dir, "tmp"))
	for _, e := range ents {
		os.Remove(filepath.Join(s.dir, "tmp", e.Name()))
	}
}

// Sweep removes uploads never posted, old events and idempotency keys, and
// returns how many records it removed.
func (s *Service) Sweep() (int, error) {
	now := s.now()
	var files []string
	n := 0
	err := s.st.Update(func(tx *store.Tx) error {
		files, n = nil, 0
		var dead []string
		err := store.Each(tx, store.BucketAttachments, "", func(k string, a Attachment) error {
			if a.Seq == 0 && now.Sub(a.Created) > pendingKeep {
				dead = append(dead, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range dead {
			if err := tx.Delete(store.BucketAttachments, k); err != nil {
				return err
			}
		}
		files = dead
		var keys []string
		err = store.Each(tx, store.BucketIdempotency, "", func(k string, r idemRecord) error {
			if now.Sub(r.At) > eventKeep {
				keys = append(keys, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := tx.Delete(store.BucketIdempotency, k); err != nil {
				return err
			}
		}
		pruned, err := s.pruneEvents(tx, now)
		n = len(dead) + len(keys) + pruned
		return err
	})
	if err == nil {
		s.removeFiles(files)
	}
	return n, err
}
