package pool

import (
	"bytes"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/internal/wire"
)

// The fast decoder and the general one agree on every input both accept.
func FuzzFastSnapshot(f *testing.F) {
	f.Add(snapshotJSON(nil))
	f.Add([]byte(`{"v":1,"agent":{"v":1,"id":"a"},"seq":3,"sample":null,"breakers":[]}`))
	f.Add([]byte(`{"v":1,"agent":{"v":1,"id":"a","started":"2026-01-02T03:04:05.678Z"},"sample":{"v":1,"cpu":{"cores":0.25,"limit_cores":null},"memory":{"working_set_bytes":12,"limit_bytes":1024}},"breakers":[{"v":1,"name":"db","state":"open","failure_rate":12.5,"calls":{"failed":3},"thresholds":{"failure_rate":50,"minimum_calls":10}}]}`))
	f.Add([]byte(`{"v":1,"extra":{"x":[1,2,{"y":null}]},"agent":{"v":1,"id":"\u00e9"},"breakers":[{"name":"b","rate_per_sec":1e3}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, general wire.Snapshot
		fastErr := fastSnapshot(data, &fast, interner{}, 0, nil)
		generalErr := jsonv2.Unmarshal(data, &general)
		if fastErr != nil || generalErr != nil {
			return // the general decoder decides whatever the fast one declines
		}
		if diff := cmp.Diff(general, fast); diff != "" {
			t.Fatalf("decoders disagree on %q (-general +fast):\n%s", data, diff)
		}
	})
}

func TestFastSnapshotTakesRealisticEvents(t *testing.T) {
	data := snapshotJSON(nil)
	var fast, general wire.Snapshot
	if err := fastSnapshot(data, &fast, interner{}, 0, nil); err != nil {
		t.Fatalf("fast decoder declined a realistic snapshot: %v", err)
	}
	if err := jsonv2.Unmarshal(data, &general); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(general, fast); diff != "" {
		t.Errorf("(-general +fast):\n%s", diff)
	}
	// Escaped strings and other forms are declined, not misread.
	for _, in := range [][]byte{
		bytes.Replace(data, []byte(`"dependency-1"`), []byte(`"dep\u0065ndency-1"`), 1),
		bytes.Replace(data, []byte(`"v":1,`), []byte(`"v":1,,`), 1),
		append(append([]byte(nil), data...), []byte(" {}")...),
	} {
		var s wire.Snapshot
		if err := fastSnapshot(in, &s, interner{}, 0, nil); err == nil {
			t.Errorf("fast decoder accepted %q", in[:min(len(in), 60)])
		}
	}
}

// A decoder reuses its memory from one snapshot to the next: nothing of an earlier
// snapshot may show through a later one, whatever each holds.
func TestDecoderReuseLeavesNothingBehind(t *testing.T) {
	rich := snapshotJSON(nil)
	sparse := []byte(`{"v":1,"agent":{"v":1,"id":"b"},"seq":2,"sample":{"v":1,"interval_ms":500,"cpu":{"cores":0.5},"collectors":[]},"breakers":[{"v":1,"name":"x","state":"open","failure_rate":null,"calls":{}}]}`)
	empty := []byte(`{"v":1,"agent":{"v":1,"id":"c"},"sample":null,"breakers":[]}`)
	for _, order := range [][][]byte{{rich, sparse, rich, empty, rich}, {sparse, rich, sparse}, {empty, sparse, empty}} {
		dec := newDecoder()
		for _, data := range order {
			got, err := dec.snapshot(data, 10)
			if err != nil {
				t.Fatal(err)
			}
			var want wire.Snapshot
			if err := jsonv2.Unmarshal(data, &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, *got); diff != "" {
				t.Fatalf("after reuse (-fresh +reused):\n%s", diff)
			}
		}
	}
}
