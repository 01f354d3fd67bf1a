package web

import (
	"crypto/tls"
	"net/http"
	"testing"
)

func TestClientAddressBelievesForwardedForOnlyFromTrustedProxies(t *testing.T) {
	proxies, err := ParseTrustedProxies("10.0.0.0/8, 192.168.1.7, ::1")
	if err != nil {
		t.Fatal(err)
	}
	tp := trustedProxies(proxies)
	for _, c := range []struct {
		peer string
		xff  []string
		want string
	}{
		{"203.0.113.9:1234", []string{"198.51.100.1"}, "203.0.113.9"},                // not a proxy: the header is anyone's word
		{"10.1.2.3:80", []string{"198.51.100.1"}, "198.51.100.1"},                    // one trusted proxy
		{"10.1.2.3:80", []string{"6.6.6.6, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"}, // a chain: right-most untrusted
		{"10.1.2.3:80", []string{"6.6.6.6", "198.51.100.1"}, "198.51.100.1"},         // several headers are one list
		{"10.1.2.3:80", []string{"garbage, 198.51.100.1"}, "198.51.100.1"},           // junk left of the client is ignored
		{"10.1.2.3:80", []string{"198.51.100.1, garbage"}, "10.1.2.3"},               // junk next to us: stop at our proxy
		{"10.1.2.3:80", nil, "10.1.2.3"},                                             // no header: the proxy itself
		{"192.168.1.7:80", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},               // only proxies: the left-most
		{"[::ffff:10.1.2.3]:80", []string{"2001:db8::1"}, "2001:db8::/64"},           // IPv4-mapped peer; IPv6 clients by their /64
		{"[2001:db8:0:0:aaaa::1]:80", nil, "2001:db8::/64"},                          // one /64 is one client
		{"[::1]:80", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},                // mapped client, unmapped
	} {
		r := &http.Request{RemoteAddr: c.peer, Header: http.Header{}}
		for _, h := range c.xff {
			r.Header.Add("X-Forwarded-For", h)
		}
		if got := tp.client(r); got != c.want {
			t.Fatalf("peer %s, X-Forwarded-For %q: client %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
	if _, err := ParseTrustedProxies("10.0.0.0/33"); err == nil {
		t.Fatal("accepted a bad prefix")
	}
	// HTTPS: directly, or said by a trusted proxy only.
	plain := &http.Request{RemoteAddr: "203.0.113.9:1", Header: http.Header{"X-Forwarded-Proto": {"https"}}}
	proxied := &http.Request{RemoteAddr: "10.0.0.1:1", Header: http.Header{"X-Forwarded-Proto": {"https"}}}
	direct := &http.Request{RemoteAddr: "203.0.113.9:1", TLS: &tls.ConnectionState{}}
	if tp.secure(plain) || !tp.secure(proxied) || !tp.secure(direct) {
		t.Fatal("secure() believes the wrong peers")
	}
}
