package pool

import (
	"fmt"
	"hash/maphash"
	"net"
	"strconv"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/faultline-dev/faultline/internal/wire"
)

// Events are decoded by a few workers rather than by each connection's goroutine: JSON
// decoding needs a deep stack, and ten thousand connection goroutines each keeping one
// would cost more memory than the agents' data. An agent's events always go to the same
// worker, so they are handled in the order they were sent.

// job is one event handed to a worker; data is a pooled buffer.
type job struct {
	a    *agent
	conn net.Conn
	name string
	id   string
	data *[]byte
}

var seed = maphash.MakeSeed()

// Transitions go to a worker's priority queue, ahead of queued metrics: a flip must
// reach clients within milliseconds even when a burst of snapshots is being decoded. A
// metrics event queued before the transition may then be applied after it; its breaker
// state is stale for at most one interval, until the agent's next metrics event, and the
// transition event itself goes out at once and correct.
func (p *Pool) startWorkers() {
	p.jobs = make([]chan job, p.opts.Workers)
	p.prio = make([]chan job, p.opts.Workers)
	for i := range p.jobs {
		ch, prio := make(chan job, 1024), make(chan job, 256)
		p.jobs[i], p.prio[i] = ch, prio
		go func() {
			in := interner{}
			for {
				select {
				case j, ok := <-prio:
					if !ok {
						return
					}
					p.work(j, in)
					continue
				default:
				}
				select {
				case j, ok := <-prio:
					if !ok {
						return
					}
					p.work(j, in)
				case j, ok := <-ch:
					if !ok {
						return
					}
					p.work(j, in)
				}
			}
		}()
	}
}

// enqueue hands an event to the agent's worker. Events the pool does not use are
// skipped. It reports false when the agent has already been found misbehaving.
func (p *Pool) enqueue(a *agent, conn net.Conn, ev event, buf *[]byte) bool {
	if a.failed.Load() != nil {
		putBuf(buf)
		return false
	}
	switch ev.Name {
	case wire.EventSnapshot, wire.EventMetrics, wire.EventCircuitBreaker:
	default:
		putBuf(buf)
		return true
	}
	if buf == nil {
		return true
	}
	*buf = (*buf)[:len(ev.Data)] // ev.Data is the buffer without the last newline
	a.pending.Add(1)
	q := p.jobs[a.worker]
	if ev.Name == wire.EventCircuitBreaker {
		q = p.prio[a.worker]
	}
	q <- job{a: a, conn: conn, name: ev.Name, id: ev.ID, data: buf}
	return true
}

func (p *Pool) work(j job, in interner) {
	a := j.a
	defer a.pending.Done()
	defer putBuf(j.data)
	if a.failed.Load() != nil {
		return // the rest of a misbehaving stream is dropped
	}
	if err := a.handle(event{Name: j.name, ID: j.id, Data: *j.data}, j.conn, in); err != nil {
		a.failed.Store(&err)
		j.conn.Close() // the connection goroutine sees the read fail and reports err
		return
	}
	if seqOf(j.id) >= seqOf(a.lastID) || epochOf(j.id) != epochOf(a.lastID) {
		a.lastID = j.id // events may be handled out of order: keep the newest id
	}
}

// seqOf and epochOf split an event id "<epoch>-<seq>".
func seqOf(id string) uint64 {
	_, seq, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseUint(seq, 10, 64)
	return n
}

func epochOf(id string) string {
	epoch, _, _ := strings.Cut(id, "-")
	return epoch
}

// workerFor spreads agents over the workers by key.
func (p *Pool) workerFor(key string) int {
	return int(maphash.String(seed, key) % uint64(len(p.jobs)))
}

// decodeSnapshot decodes a snapshot with the fast decoder, or with the general one when
// the fast one declines.
func decodeSnapshot(data []byte, snap *wire.Snapshot, in interner, breakers int) error {
	if fastSnapshot(data, snap, in, breakers) == nil && snap.V == wire.Version {
		return nil
	}
	*snap = wire.Snapshot{}
	return decode(data, snap)
}

// decode unmarshals an agent's message and checks its wire version. It uses the JSON v2
// implementation, about twice as fast as encoding/json on snapshots: decoding is most
// of the aggregator's work.
func decode[T interface{ WireVersion() int }](data []byte, v *T) error {
	if err := jsonv2.Unmarshal(data, v); err != nil {
		return err
	}
	if got := (*v).WireVersion(); got != wire.Version {
		return fmt.Errorf("wire version %d, want %d", got, wire.Version)
	}
	return nil
}
