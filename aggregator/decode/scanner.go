package decode

import (
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/faultline-dev/faultline/internal/wire"
)

// The scanner walks an event's JSON once, without reflection: the generated decoders
// (zz_generated.decode.go) call it for each member. It accepts the JSON the agents write
// and declines (errFast) anything else it is not sure to read exactly as the reference
// decoder does: escaped strings, names that repeat in an object, numbers outside the JSON
// grammar, times in another form. The caller then decodes with the reference, whose
// result and errors are authoritative (FuzzSnapshot checks that both agree).

var errFast = errors.New("fast decoder: unsupported input")

// interner returns one string per distinct byte sequence, bounded.
type interner map[string]string

func (in interner) get(b []byte) string {
	if s, ok := in[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	if len(in) < 1<<16 && len(b) <= 256 {
		in[s] = s
	}
	return s
}

type scanner struct {
	b  []byte
	i  int
	in interner
	// utf8: the whole input is valid UTF-8, so its strings need no check of their own
	// (one pass over the event is cheaper than one per string).
	utf8 bool
	// The last time read and its text: an agent's breakers were mostly seen and last
	// updated in the same few milliseconds, so a time often repeats the one before.
	lastTime     wire.Time
	lastTimeText []byte
}

func (s *scanner) ws() {
	if s.i < len(s.b) && s.b[s.i] > ' ' {
		return // what agents write has no space between tokens
	}
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// start is where the next value starts.
func (s *scanner) start() int {
	s.ws()
	return s.i
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return errFast
	}
	s.i++
	return nil
}

// null consumes a null literal if one is next.
func (s *scanner) null() bool {
	if s.peek() == 'n' && s.i+4 <= len(s.b) && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// rawString returns the bytes of a string without escapes (escaped strings are left to
// the general decoder).
func (s *scanner) rawString() ([]byte, error) {
	if s.peek() != '"' {
		return nil, errFast
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		if !stringEnd[s.b[j]] {
			continue
		}
		if s.b[j] != '"' {
			return nil, errFast // an escape or a control character
		}
		s.i = j + 1
		v := s.b[start:j]
		if !s.utf8 && !utf8.Valid(v) {
			return nil, errFast
		}
		return v, nil
	}
	return nil, errFast
}

// stringEnd marks the bytes that end the plain part of a string: the closing quote, a
// backslash and the control characters.
var stringEnd = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func (s *scanner) str() (string, error) {
	b, err := s.rawString()
	if err != nil {
		return "", err
	}
	return s.in.get(b), nil
}

// maxMembers is the most members an object may have for the fast decoder; the wire's
// objects have at most 14.
const maxMembers = 32

// object calls field for each member of an object; it handles null as an empty object
// only where the caller allows it. An object naming a member twice is declined, as the
// general decoder refuses it: a filter of one bit per name finds the candidates, which
// are then compared with the names before. (A name is at most a few dozen bytes long.)
func (s *scanner) object(field func(key []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	var seen [2]uint64
	var starts [maxMembers]uint32 // where each name starts in s.b (names have no escapes)
	n := 0
	for {
		key, err := s.rawString()
		if err != nil {
			return err
		}
		if n == maxMembers {
			return errFast
		}
		h := memberHash(key)
		word, bit := h>>6&1, uint64(1)<<(h&63)
		if seen[word]&bit != 0 && s.seenBefore(starts[:n], key) {
			return errFast
		}
		seen[word] |= bit
		starts[n] = uint32(s.i - len(key) - 1)
		n++
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errFast
		}
	}
}

// seenBefore reports whether key is one of the names starting at starts.
func (s *scanner) seenBefore(starts []uint32, key []byte) bool {
	for _, at := range starts {
		name := s.b[at:]
		if len(name) > len(key) && name[len(key)] == '"' && string(name[:len(key)]) == string(key) {
			return true
		}
	}
	return false
}

// memberHash spreads member names over the filter's 128 bits, by length, first byte
// and last two bytes (which tell the wire's names of one object apart), multiplied by
// the golden ratio so that the top bits mix them all.
func memberHash(key []byte) uint {
	n := len(key)
	if n < 2 {
		return uint(n) << 4
	}
	h := uint64(n)<<24 | uint64(key[0])<<16 | uint64(key[n-2])<<8 | uint64(key[n-1])
	return uint((h * 0x9E3779B97F4A7C15) >> 57)
}

func (s *scanner) array(elem func() error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return errFast
		}
	}
}

// number returns the bytes of a JSON number, which must follow the JSON grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() ([]byte, error) {
	s.ws()
	b, start := s.b, s.i
	j := start
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		j = digitsEnd(b, j+1)
	default:
		return nil, errFast
	}
	if j < len(b) && b[j] == '.' {
		k := digitsEnd(b, j+1)
		if k == j+1 {
			return nil, errFast
		}
		j = k
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := digitsEnd(b, j)
		if k == j {
			return nil, errFast
		}
		j = k
	}
	s.i = j
	return b[start:j], nil
}

// digitsEnd returns where the digits of b starting at j end.
func digitsEnd(b []byte, j int) int {
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	return j
}

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// float parses a number. Plain decimals with up to 15 significant digits are exact with
// one division (both operands are exact doubles); anything else goes to strconv.
func (s *scanner) float() (float64, error) {
	b, err := s.number()
	if err != nil {
		return 0, err
	}
	neg := b[0] == '-'
	d := b
	if neg {
		d = d[1:]
	}
	var mant uint64
	digits, frac, dot := 0, 0, false
	simple := len(d) > 0 && d[0] != '.'
	for k, c := range d {
		switch {
		case c >= '0' && c <= '9':
			if k == 1 && d[0] == '0' && !dot {
				simple = false // leading zero: let strconv judge
			}
			mant = mant*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
		case c == '.' && !dot && k > 0 && k < len(d)-1:
			dot = true
		default:
			simple = false
		}
	}
	if simple && digits <= 15 && frac < len(pow10) {
		f := float64(mant) / pow10[frac]
		if neg {
			f = -f
		}
		return f, nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, errFast
	}
	return f, nil
}

func (s *scanner) uint() (uint64, error) {
	b, err := s.number()
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' || n > (math.MaxUint64-9)/10 {
			return 0, errFast
		}
		n = n*10 + uint64(c-'0')
	}
	if len(b) > 1 && b[0] == '0' {
		return 0, errFast
	}
	return n, nil
}

func (s *scanner) int() (int, error) {
	b, err := s.number()
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(string(b))
	if err != nil {
		return 0, errFast
	}
	return n, nil
}

func (s *scanner) boolean() (bool, error) {
	s.ws()
	switch {
	case s.i+4 <= len(s.b) && string(s.b[s.i:s.i+4]) == "true":
		s.i += 4
		return true, nil
	case s.i+5 <= len(s.b) && string(s.b[s.i:s.i+5]) == "false":
		s.i += 5
		return false, nil
	}
	return false, errFast
}

// time reads the wire's time format (RFC 3339 with milliseconds, UTC) or null.
func (s *scanner) time() (wire.Time, error) {
	if s.null() {
		return wire.Time{}, nil
	}
	b, err := s.rawString()
	if err != nil {
		return wire.Time{}, err
	}
	if len(b) == 24 && string(b) == string(s.lastTimeText) {
		return s.lastTime, nil
	}
	if len(b) == 24 && b[4] == '-' && b[7] == '-' && b[10] == 'T' && b[13] == ':' && b[16] == ':' && b[19] == '.' && b[23] == 'Z' {
		n := func(from, to int) (int, bool) {
			v := 0
			for _, c := range b[from:to] {
				if c < '0' || c > '9' {
					return 0, false
				}
				v = v*10 + int(c-'0')
			}
			return v, true
		}
		y, ok1 := n(0, 4)
		mo, ok2 := n(5, 7)
		d, ok3 := n(8, 10)
		h, ok4 := n(11, 13)
		mi, ok5 := n(14, 16)
		se, ok6 := n(17, 19)
		ms, ok7 := n(20, 23)
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && se < 60 {
			t := time.Date(y, time.Month(mo), d, h, mi, se, ms*int(time.Millisecond), time.UTC)
			if t.Day() == d { // not normalised from an impossible date
				s.lastTime, s.lastTimeText = wire.NewTime(t), b
				return s.lastTime, nil
			}
		}
	}
	return wire.Time{}, errFast
}

// skip passes over any value.
func (s *scanner) skip() error {
	switch c := s.peek(); {
	case c == '{':
		return s.object(func([]byte) error { return s.skip() })
	case c == '[':
		return s.array(s.skip)
	case c == '"':
		_, err := s.rawString()
		return err
	case c == 't' || c == 'f':
		_, err := s.boolean()
		return err
	case c == 'n':
		if s.null() {
			return nil
		}
		return errFast
	default:
		_, err := s.number()
		return err
	}
}
