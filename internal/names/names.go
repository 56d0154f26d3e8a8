// Package names is the one check of the names faultline carries: breaker names as an
// application or its metrics report them, breaker source names, and an agent's identity
// fields. The agent applies it to what applications report, the aggregator to what agents
// send, and the Go client to the names it is given, so that a name one of them accepts
// the others accept too.
//
// A valid name is kept byte for byte everywhere: it may hold "/", "%", quotes, spaces,
// ":" and any printable Unicode. Escaping belongs to the edge that needs it (a URL path,
// a label in the Prometheus text format) and is undone on the way in; text direction
// controls are neutralised only where a name is displayed.
//
// The package depends on the standard library alone, so that the Go client stays
// importable without the rest of faultline.
package names

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits, in bytes.
const (
	// MaxBreaker bounds a breaker name.
	MaxBreaker = 200
	// MaxIdentity bounds each identity field of an agent (pod, namespace, workload,
	// node, uid, ip, version, mode): a Kubernetes object name is at most 253.
	MaxIdentity = 253
	// MaxID bounds an agent's id, "namespace/pod" at most.
	MaxID = 2*MaxIdentity + 1
	// MaxSource bounds a breaker source name.
	MaxSource = 64
	// MaxText bounds a line of free text an agent reports (a collector's status).
	MaxText = 2048
)

// Breaker reports what is wrong with a breaker name: it must be 1 to MaxBreaker bytes of
// valid UTF-8 without control characters, and not "." or ".." (which cannot be a URL path
// segment of the push API).
func Breaker(name string) error {
	if name == "" || len(name) > MaxBreaker {
		return fmt.Errorf("must be 1 to %d bytes (got %d)", MaxBreaker, len(name))
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%q cannot be a breaker name", name)
	}
	return printable(name)
}

// Identity reports what is wrong with one identity field of an agent; an empty value is
// valid (the field is unknown).
func Identity(value string) error {
	return text(value, MaxIdentity)
}

// ID reports what is wrong with an agent id: 1 to MaxID bytes of printable UTF-8.
func ID(id string) error {
	if id == "" {
		return errors.New("must not be empty")
	}
	return text(id, MaxID)
}

// Source reports what is wrong with a breaker source name: 1 to MaxSource letters,
// digits, '-', '_' and '.'.
func Source(s string) error {
	if s == "" || len(s) > MaxSource {
		return fmt.Errorf("must be 1 to %d characters", MaxSource)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%q may hold only letters, digits, '-', '_' and '.'", s)
		}
	}
	return nil
}

// Text reports what is wrong with a line of free text of at most max bytes.
func Text(s string, max int) error { return text(s, max) }

func text(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("longer than %d bytes (%d)", max, len(s))
	}
	return printable(s)
}

// printable checks for valid UTF-8 without control characters (C0, DEL and C1).
func printable(s string) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return fmt.Errorf("%q holds the control character %U at byte %d", clip(s), rune(c), i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Errorf("%q is not valid UTF-8 at byte %d", clip(s), i)
		}
		if r >= 0x80 && r <= 0x9f {
			return fmt.Errorf("%q holds the control character %U at byte %d", clip(s), r, i)
		}
		i += size
	}
	return nil
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	return strings.ToValidUTF8(s[:64], "") + "..."
}

// Clean makes s a valid line of text of at most max bytes: invalid UTF-8 and control
// characters become U+FFFD and a longer text is cut at a character boundary, ending in
// "…". It is for text an agent composes (statuses quoting outside input), never for names.
func Clean(s string, max int) string {
	if printable(s) == nil && len(s) <= max {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if r < 0x20 || r >= 0x7f && r <= 0x9f {
			r = '\uFFFD'
		}
		if b.Len()+utf8.RuneLen(r) > max-len("…") {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
