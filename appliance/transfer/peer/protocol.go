package peer

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Protocol constants (PROTOCOL.md section 3).
const (
	// Label is the data channel's label.
	Label = "hearth-transfer/1"
	// ChunkSize is the largest binary frame.
	ChunkSize = 64 << 10
	// AckEvery is how many bytes the receiver writes between acks.
	AckEvery = 1 << 20
	// MaxBuffered is the most the sender lets the channel buffer.
	MaxBuffered = 4 << 20
	// LowThreshold is the bufferedAmountLowThreshold the sender sets.
	LowThreshold = 1 << 20
	// MaxFiles is the most files a transfer lists.
	MaxFiles = 10000
	// PartSuffix marks a file still being received.
	PartSuffix = ".hearth-part"
	// maxControl bounds a control message (a manifest of MaxFiles names).
	maxControl = 16 << 20
)

// Reasons carried by error and cancel messages.
const (
	ReasonDiskFull    = "disk_full"
	ReasonReadFailed  = "read_failed"
	ReasonWriteFailed = "write_failed"
	ReasonProtocol    = "protocol"
	ReasonHash        = "hash"
)

// FileInfo describes one file of a manifest. Name may contain "/" for the
// files of a folder; MTime is Unix milliseconds (0: unknown).
type FileInfo struct {
	Name  string `json:"name"`
	Size  int64  `json:"size"`
	Type  string `json:"type"`
	MTime int64  `json:"mtime"`
}

// Sentinel errors.
var (
	// ErrDisconnected: the channel closed before "done"; the transfer can
	// resume on a new channel.
	ErrDisconnected = errors.New("connection lost")
	// ErrCancelled: a party cancelled the transfer.
	ErrCancelled = errors.New("transfer cancelled")
	// ErrDiskFull: the receiver's disk is full.
	ErrDiskFull = errors.New("the receiver's disk is full")
	// ErrBadFiles: some file failed verification.
	ErrBadFiles = errors.New("some files failed verification")
)

// PeerError is a fatal "error" or "cancel" message from the other side.
type PeerError struct {
	Cancel bool
	Reason string
}

func (e *PeerError) Error() string {
	if e.Cancel {
		return fmt.Sprintf("the other side cancelled (%s)", e.Reason)
	}
	if e.Reason == ReasonDiskFull {
		return "the receiver's disk is full"
	}
	return fmt.Sprintf("the other side failed: %s", e.Reason)
}

// Is lets errors.Is match ErrCancelled and ErrDiskFull.
func (e *PeerError) Is(target error) bool {
	return (target == ErrCancelled && e.Cancel) || (target == ErrDiskFull && e.Reason == ReasonDiskFull)
}

// control is a decoded control message.
type control struct {
	T      string     `json:"t"`
	Files  []FileInfo `json:"files"`
	Total  *int64     `json:"total"`
	File   *int       `json:"file"`
	Offset *int64     `json:"offset"`
	SHA256 string     `json:"sha256"`
	Reason string     `json:"reason"`
}

func decodeControl(b []byte) (control, error) {
	var c control
	if len(b) > maxControl {
		return c, errors.New("control message too large")
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("decode control message: %w", err)
	}
	switch c.T {
	case "manifest":
		if c.Total == nil || len(c.Files) > MaxFiles {
			return c, errors.New("bad manifest")
		}
		var sum int64
		for _, f := range c.Files {
			if f.Size < 0 {
				return c, errors.New("bad manifest: negative size")
			}
			sum += f.Size
		}
		if sum != *c.Total {
			return c, errors.New("bad manifest: total does not match the sizes")
		}
	case "want", "ack":
		if c.File == nil || c.Offset == nil || *c.Offset < 0 {
			return c, fmt.Errorf("bad %s message", c.T)
		}
	case "skip", "ok", "bad":
		if c.File == nil {
			return c, fmt.Errorf("bad %s message", c.T)
		}
	case "end":
		if c.File == nil || len(c.SHA256) != 64 {
			return c, errors.New("bad end message")
		}
	case "done", "cancel", "error":
	default:
		return c, fmt.Errorf("unknown control message %q", c.T)
	}
	return c, nil
}

// Encoders for the control messages, each with exactly its fields.

func msgManifest(files []FileInfo) []byte {
	var total int64
	for _, f := range files {
		total += f.Size
	}
	return mustJSON(struct {
		T     string     `json:"t"`
		Files []FileInfo `json:"files"`
		Total int64      `json:"total"`
	}{"manifest", files, total})
}

func msgFileOffset(t string, file int, offset int64) []byte {
	return mustJSON(struct {
		T      string `json:"t"`
		File   int    `json:"file"`
		Offset int64  `json:"offset"`
	}{t, file, offset})
}

func msgFile(t string, file int) []byte {
	return mustJSON(struct {
		T    string `json:"t"`
		File int    `json:"file"`
	}{t, file})
}

func msgEnd(file int, sum string) []byte {
	return mustJSON(struct {
		T      string `json:"t"`
		File   int    `json:"file"`
		SHA256 string `json:"sha256"`
	}{"end", file, sum})
}

func msgBad(file int, reason string) []byte {
	return mustJSON(struct {
		T      string `json:"t"`
		File   int    `json:"file"`
		Reason string `json:"reason"`
	}{"bad", file, reason})
}

func msgReason(t, reason string) []byte {
	return mustJSON(struct {
		T      string `json:"t"`
		Reason string `json:"reason"`
	}{t, reason})
}

func msgDone() []byte { return []byte(`{"t":"done"}`) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed shapes of strings and numbers are marshalled
	}
	return b
}

// Progress is a snapshot of a transfer's progress.
type Progress struct {
	File      int   // index of the file in progress
	FileBytes int64 // bytes of that file done (sent or written)
	FileSize  int64
	Bytes     int64 // bytes of the whole transfer done
	Total     int64
}
