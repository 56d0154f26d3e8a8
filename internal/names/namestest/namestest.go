// Package namestest holds the names every source's tests send through faultline: each
// must come out byte for byte as it went in.
package namestest

import (
	"strings"

	"github.com/faultline-dev/faultline/internal/names"
)

// Longest is a valid breaker name of exactly names.MaxBreaker bytes, with multi-byte
// characters and the characters that need escaping in it.
func Longest() string {
	s := strings.Repeat("é", names.MaxBreaker/2-4) + `a/b%"c: `
	if len(s) != names.MaxBreaker {
		panic("namestest: longest name is not names.MaxBreaker bytes")
	}
	return s
}

// Hostile are valid breaker names that escaping, splitting or decoding would change:
// "/", "%", an escape that must stay literal, spaces, ":", quotes, backslashes,
// non-ASCII text, a right-to-left override, and the longest allowed name.
func Hostile() []string {
	return []string{
		"httproute/shop/cart/rule/1",
		"100%",
		"%2F stays %2F",
		"with  two spaces",
		"outbound|8080||cart.shop.svc.cluster.local",
		"host:8080",
		`say "hi"`,
		`back\slash`,
		"café ☕ 日本語",
		"\u202Eevil\u202C",
		Longest(),
	}
}
