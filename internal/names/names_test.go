package names

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestBreaker(t *testing.T) {
	for _, ok := range []string{"a", "httproute/shop/cart/rule/1", "100%", "%2F", "with space", "host:8080", `say "hi"`,
		"café ☕ 日本", "\u202Eevil", strings.Repeat("é", MaxBreaker/2), "x/../y", "...", `a\b`} {
		if err := Breaker(ok); err != nil {
			t.Errorf("Breaker(%q) = %v, want it accepted", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", strings.Repeat("é", MaxBreaker/2) + "x", "a\x00b", "tab\there", "nl\n", "del\x7f", "c1\u0085", "bad\xffutf8"} {
		if err := Breaker(bad); err == nil {
			t.Errorf("Breaker(%q) accepted", bad)
		}
	}
}

func TestIdentityAndSource(t *testing.T) {
	if err := Identity(strings.Repeat("w", MaxIdentity)); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{strings.Repeat("w", MaxIdentity+1), "work\x00load", "\xc3"} {
		if Identity(bad) == nil {
			t.Errorf("Identity(%q) accepted", bad)
		}
	}
	if ID("") == nil || ID(strings.Repeat("i", MaxID+1)) == nil || ID("shop/cart-1") != nil {
		t.Error("ID checks its length and content")
	}
	if Source("push") != nil || Source("prom.v2_x-1") != nil || Source("a b") == nil || Source("") == nil || Source(strings.Repeat("s", MaxSource+1)) == nil {
		t.Error("Source allows letters, digits, -, _ and . only")
	}
}

func TestClean(t *testing.T) {
	if got := Clean("fine text", 100); got != "fine text" {
		t.Errorf("Clean changed valid text: %q", got)
	}
	got := Clean("bad\x00\xff"+strings.Repeat("é", 100), 50)
	if !utf8.ValidString(got) || len(got) > 50 || Text(got, 50) != nil || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "bad\uFFFD\uFFFD") {
		t.Errorf("Clean = %q (%d bytes), want valid printable text of at most 50 bytes", got, len(got))
	}
}
