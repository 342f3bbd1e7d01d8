package daemon

import "testing"

func TestIsFramedSTUN(t *testing.T) {
	for _, tt := range []struct {
		name string
		head []byte
		want bool
	}{
		{"binding request", []byte{0, 20, 0x00, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42}, true},
		{"binding response", []byte{0, 20, 0x01, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42}, false},
		{"no magic cookie", []byte{0, 20, 0x00, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x43}, false},
		{"TLS client hello", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03}, false},
		{"plain HTTP", []byte("GET / HTTP"), false},
	} {
		if got := isFramedSTUN(tt.head); got != tt.want {
			t.Errorf("isFramedSTUN(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
