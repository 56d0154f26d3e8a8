package ingest

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/internal/wire"
	"github.com/faultline-dev/faultline/internal/wire/wiretest"
)

// The fuzz targets check that decoding never panics and that whatever it accepts is
// valid: it passes the registry's check and survives a round trip. Seeds are in
// testdata/fuzz, and each target adds a report with every field of wire.Breaker set.

func filledReport(seed int) []byte {
	b, _ := json.Marshal(wiretest.Filled[wire.Breaker](seed))
	return b
}

func FuzzDecodeBreaker(f *testing.F) {
	f.Add(filledReport(1), wiretest.Filled[wire.Breaker](1).Name)
	f.Fuzz(func(t *testing.T, body []byte, name string) {
		b, err := DecodeBreaker(body, name)
		if err != nil {
			return
		}
		if err := wire.CheckBreaker(&b); err != nil || b.Name != name || b.Source == "" {
			t.Fatalf("accepted an invalid breaker %+v: %v", b, err)
		}
		again, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := DecodeBreaker(again, name)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", again, err)
		}
		if diff := cmp.Diff(b, b2); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

func FuzzDecodeBreakers(f *testing.F) {
	f.Add([]byte("[" + string(filledReport(1)) + "," + string(filledReport(2)) + "]"))
	f.Fuzz(func(t *testing.T, body []byte) {
		bs, err := DecodeBreakers(body)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, b := range bs {
			if err := wire.CheckBreaker(&b); err != nil || seen[b.Name] {
				t.Fatalf("accepted an invalid or repeated breaker %+v: %v", b, err)
			}
			seen[b.Name] = true
		}
	})
}

func FuzzDecodeThroughput(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		tp, err := DecodeThroughput(body)
		if err != nil {
			return
		}
		if tp.Requests == nil || tp.Errors == nil || *tp.Errors > *tp.Requests {
			t.Fatalf("accepted inconsistent counters %+v", tp)
		}
		if l := tp.Latency; l != nil && (l.P50Ms < 0 || l.P50Ms > l.P90Ms || l.P90Ms > l.P99Ms) {
			t.Fatalf("accepted bad latency %+v", l)
		}
	})
}

func FuzzDecodeEvents(f *testing.F) {
	f.Add([]byte(`{"v":1,"breakers":[` + string(filledReport(1)) + `],"throughput":{"v":1,"requests":10,"errors":1,"latency":{"p50_ms":1,"p90_ms":2,"p99_ms":3}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := DecodeEvents(body)
		if err != nil {
			return
		}
		if ev.Breakers == nil && ev.Throughput == nil {
			t.Fatal("accepted an empty request")
		}
		for _, b := range ev.Breakers {
			if err := wire.CheckBreaker(&b); err != nil {
				t.Fatalf("accepted an invalid breaker %+v: %v", b, err)
			}
		}
	})
}
