package certs_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/certs"
	"github.com/hearth-home/hearth/appliance/certs/certstest"
)

func TestStorageConformance(t *testing.T) {
	certstest.TestStorage(t, certstest.NewKV)
}

var recordCases = []struct {
	name  string
	value []byte
	mod   time.Time
}{
	{"empty", []byte{}, time.Unix(0, 0)},
	{"pem", []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), time.Date(2026, 11, 22, 1, 2, 3, 4, time.UTC)},
	{"binary", []byte{0, 1, 0xff, 0}, time.Unix(-1, 5)},
}

func TestRecordRoundTrip(t *testing.T) {
	for _, tc := range recordCases {
		t.Run(tc.name, func(t *testing.T) {
			v, mod, err := certs.DecodeRecord(certs.EncodeRecord(tc.value, tc.mod))
			if err != nil || !bytes.Equal(v, tc.value) || !mod.Equal(tc.mod) {
				t.Fatalf("DecodeRecord(EncodeRecord(%q, %s)) = %q, %s, %v", tc.value, tc.mod, v, mod, err)
			}
		})
	}
}

func TestDecodeRecordDamaged(t *testing.T) {
	for _, b := range [][]byte{nil, {1}, {1, 2, 3, 4, 5, 6, 7, 8}, append([]byte{2}, make([]byte, 12)...), []byte("-----BEGIN")} {
		if _, _, err := certs.DecodeRecord(b); !errors.Is(err, certs.ErrCorruptRecord) {
			t.Errorf("DecodeRecord(%q) error = %v, want ErrCorruptRecord", b, err)
		}
	}
}

// FuzzDecodeRecord: records come from the KV, which a damaged disk or a
// restored foreign file can fill with anything.
func FuzzDecodeRecord(f *testing.F) {
	for _, tc := range recordCases {
		f.Add(certs.EncodeRecord(tc.value, tc.mod))
	}
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, mod, err := certs.DecodeRecord(b)
		if err != nil {
			if !errors.Is(err, certs.ErrCorruptRecord) {
				t.Fatalf("DecodeRecord error %v does not wrap ErrCorruptRecord", err)
			}
			return
		}
		if again := certs.EncodeRecord(v, mod); !bytes.Equal(again, b) {
			t.Fatalf("EncodeRecord(DecodeRecord(%q)) = %q", b, again)
		}
	})
}
