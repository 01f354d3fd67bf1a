package web

import "strings"

// bounded returns s cut to at most n bytes (on a rune boundary, marked with
// "…"), for echoing client input such as ids and paths in answers and logs
// without letting its size through.
func bounded(s string, n int) string {
	if len(s) <= n {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	cut := n
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "\uFFFD") + "…"
}
