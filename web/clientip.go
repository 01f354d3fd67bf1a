package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Client addresses key the anonymous quotas, the stream cap and the sign-in
// throttle. A request's address is its connection's peer; X-Forwarded-For
// is believed only when that peer is a configured trusted proxy (the
// original product keyed its limits on the header from anyone, so anyone
// could pick a fresh key per request). Behind a chain of proxies the client
// is the right-most address that is not itself a trusted proxy.

// ParseTrustedProxies reads a comma-separated list of addresses and CIDR
// prefixes ("10.0.0.0/8, 192.168.1.7"), as --trusted-proxies takes it.
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

type trustedProxies []netip.Prefix

func (t trustedProxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peer is the connection's remote address (set by net/http, never by the client).
func peer(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	return a.Unmap(), err == nil
}

// client returns the address of the client that sent r, as limits count
// clients: an IPv6 address by its /64, since one home connection or
// server commonly holds a whole /64 and could otherwise pick a fresh key
// for every request.
func (t trustedProxies) client(r *http.Request) string {
	return clientKey(t.clientAddr(r))
}

func clientKey(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.Unmap().String()
}

// clientAddr returns the address of the client that sent r.
func (t trustedProxies) clientAddr(r *http.Request) netip.Addr {
	a, ok := peer(r)
	if !ok {
		return netip.Addr{}
	}
	if !t.trusts(a) {
		return a
	}
	// Every X-Forwarded-For header, in order, as one list; walk it from
	// the right, past our own proxies.
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed entry: what lies left of it is anyone's word
		}
		if !t.trusts(hop) {
			return hop.Unmap()
		}
		a = hop.Unmap()
	}
	return a
}

// secure reports whether the client reached us over HTTPS: directly, or
// through a trusted proxy that says so in X-Forwarded-Proto.
func (t trustedProxies) secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	a, ok := peer(r)
	return ok && t.trusts(a) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}
