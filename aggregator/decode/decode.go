// Package decode reads the agents' messages into what the aggregator keeps of them. It is
// the aggregator's one decoder of the wire types: the functions that read each type are
// generated from internal/wire (zz_generated.decode.go, by ./gen), so a field added there
// is read once they are generated again, and nothing here spells out the wire types by
// hand.
//
// An agent's snapshot, about 5 KiB, arrives ten thousand times a second in a large fleet.
// Its bytes are walked once, without reflection; strings seen before (breaker names,
// states, sources, identities repeat in every event) are not allocated again; the
// message's pointers take their memory from a few slabs per message, sized by what the
// same agent's last message took (Sizes); and a breaker's thresholds, configuration that
// is the same on every pod of a workload, are kept once and shared. What comes out is the
// caller's to keep: nothing of it is reused for the next message.
//
// Decoding is as strict as the reference, the JSON v2 implementation with the wire's
// rules: invalid JSON numbers and UTF-8, an object naming a member twice and a wire
// version other than 1 are refused. Whatever the generated decoders are not sure to read
// exactly as the reference does (an escaped string, say), they decline, and the message is
// decoded by the reference, whose result and errors are authoritative (FuzzSnapshot
// checks that both agree on every input).
package decode

//go:generate go run ./gen -o zz_generated.decode.go

import (
	"fmt"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/faultline-dev/faultline/internal/wire"
)

// Sizes is how much of each kind of memory an agent's message took: the next message of
// the same agent is given as much at once.
type Sizes [kinds]uint16

// maxHint bounds a size kept in Sizes.
const maxHint = 1 << 15

// maxInterned bounds the distinct values kept of each interned type; beyond it, each
// message keeps its own.
const maxInterned = 1 << 14

// Decoder decodes messages, one at a time: it is owned by one reader (an event loop). It
// keeps the strings and interned values seen before, bounded.
type Decoder struct {
	in      interner
	interns interns
	// The message being decoded: its slabs, the sizes it was given and those it took; own
	// gives every pointer memory of its own instead (an interned value).
	slabs      slabs
	hint, used Sizes
	own        bool
}

// New returns a decoder.
func New() *Decoder { return &Decoder{in: interner{}} }

// Snapshot decodes an agent's snapshot or metrics event. sizes holds what the agent's last
// message took (zero for its first) and is updated with what this one took.
func (d *Decoder) Snapshot(data []byte, sizes *Sizes) (*wire.Snapshot, error) {
	snap := new(wire.Snapshot)
	d.begin(*sizes)
	s := d.scanner(data)
	err := d.decodeSnapshot(&s, snap)
	if err == nil && s.peek() != 0 {
		err = errFast // trailing data
	}
	*sizes = d.used
	d.end()
	if err == nil && snap.V == wire.Version {
		return snap, nil
	}
	snap = new(wire.Snapshot)
	return snap, Reference(data, snap)
}

// Transition decodes an agent's circuit-breaker event.
func (d *Decoder) Transition(data []byte) (wire.Transition, error) {
	var tr wire.Transition
	d.begin(Sizes{})
	d.own = true
	s := d.scanner(data)
	err := d.decodeTransition(&s, &tr)
	if err == nil && s.peek() != 0 {
		err = errFast
	}
	d.end()
	if err == nil && tr.V == wire.Version {
		return tr, nil
	}
	tr = wire.Transition{}
	return tr, Reference(data, &tr)
}

func (d *Decoder) scanner(data []byte) scanner {
	return scanner{b: data, in: d.in, utf8: utf8.Valid(data)}
}

// begin starts a message with empty slabs, sized by hint.
func (d *Decoder) begin(hint Sizes) {
	d.slabs = slabs{}
	d.hint, d.used = hint, Sizes{}
	d.own = false
}

// end leaves nothing of the message with the decoder.
func (d *Decoder) end() { d.slabs = slabs{} }

// alloc returns memory for one value of kind k, from the message's slab of its type: the
// first piece of a slab holds what the agent's last message took of it; further pieces
// grow, and no piece moves once handed out.
func alloc[T any](d *Decoder, slab *[]T, k int) *T {
	if d.own {
		return new(T)
	}
	if len(*slab) == cap(*slab) {
		n := int(d.hint[k]) - int(d.used[k])
		if n <= 0 {
			n = max(int(d.used[k]), 4)
		}
		*slab = make([]T, 0, n)
	}
	*slab = (*slab)[:len(*slab)+1]
	if d.used[k] < maxHint {
		d.used[k]++
	}
	return &(*slab)[len(*slab)-1]
}

// Reference decodes an agent's message with the reference decoder, JSON v2 with the wire's
// rules (a member named twice, invalid UTF-8 and a wire version other than 1 refused).
func Reference[T interface{ WireVersion() int }](data []byte, v *T) error {
	if err := jsonv2.Unmarshal(data, v); err != nil {
		return err
	}
	if got := (*v).WireVersion(); got != wire.Version {
		return fmt.Errorf("wire version %d, want %d", got, wire.Version)
	}
	return nil
}
