package relay_test

import (
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/netip"
	"regexp"
	"time"

	"github.com/hearth-home/hearth/appliance/relay"
)

// The wiring point hands the relay its sockets and the secret from the
// store; the HTTP API returns Credentials to a signed-in client as JSON,
// with the host name the client used.
func ExampleServer_Credentials() {
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	secret := []byte("kept in the store; see relay.GenerateSecret")
	s, err := relay.New(relay.Config{
		UDP:     udp,
		TCP:     tcp,
		RelayIP: netip.MustParseAddr("127.0.0.1"),
		Secrets: func() ([]byte, [][]byte) { return secret, nil },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	c, err := s.Credentials("hearth.local:8443", "u42", time.Unix(1_700_000_000, 0))
	if err != nil {
		log.Fatal(err)
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	fmt.Println(regexp.MustCompile(`:\d+\?|:\d+"`).ReplaceAllStringFunc(string(b), func(m string) string {
		return ":PORT" + m[len(m)-1:]
	}))
	// Output:
	// {
	//   "urls": [
	//     "turn:hearth.local:PORT?transport=udp",
	//     "turn:hearth.local:PORT?transport=tcp",
	//     "stun:hearth.local:PORT"
	//   ],
	//   "username": "1700000600:u42",
	//   "credential": "phwtqA1bsowy7Z+XJ5rGwwYaNZo=",
	//   "ttl": 600
	// }
}
