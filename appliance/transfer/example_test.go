package transfer_test

import (
	"fmt"

	"github.com/hearth-home/hearth/appliance/transfer"
)

// A pairing code is read the way people type it.
func ExampleNormalizeCode() {
	fmt.Println(transfer.NormalizeCode("k7pqo-1lmzz"))
	fmt.Println(transfer.NormalizeCode("K7PQ0-1MZZ") == "")
	// Output:
	// K7PQ011MZZ
	// true
}

// Decode checks a client message's shape before the service looks at it.
func ExampleDecode() {
	m, err := transfer.Decode(transfer.TypeOffer, []byte(`{"ts":1795000000000,"nonce":"0123456789abcdef",
		"to_user":"u-dad","files":[{"name":"holiday.jpg","size":2048,"type":"image/jpeg"}]}`))
	fmt.Println(m.ToUser, len(m.Files), err)
	_, err = transfer.Decode(transfer.TypeSignal, []byte(`{"ts":1795000000000,"nonce":"0123456789abcdef","id":"t1"}`))
	fmt.Println(transfer.Code(err), err)
	// Output:
	// u-dad 1 <nil>
	// bad_message the transfer message is malformed: a signal carries exactly one of sdp or candidate
}
