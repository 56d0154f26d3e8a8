package decode

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/internal/wire"
	"github.com/faultline-dev/faultline/internal/wire/wiretest"
)

// FuzzFastSnapshot checks the decoder against the reference on every input: the decoder
// (the generated decoders, falling back to the reference when they decline) accepts with
// the snapshot the reference decodes, or refuses what the reference refuses; and what the
// generated decoders accept on their own, the reference accepts identically. The reference is
// the JSON v2 implementation (what encoding/json/v2 ships as), with the wire's strict
// rules: a member named twice, invalid UTF-8 and a wire version other than 1 are refused.
// encoding/json must agree too wherever its looser rules do not come into play (it keeps
// the last of duplicate names, matches names without regard to case and replaces invalid
// UTF-8). The seeds (testdata/fuzz) hold every field of the wire types.
func FuzzFastSnapshot(f *testing.F) {
	f.Add(snapshotJSON(nil))
	filled, _ := json.Marshal(wiretest.Filled[wire.Snapshot](4)) // every field, as the types stand
	f.Add(filled)
	f.Fuzz(func(t *testing.T, data []byte) {
		var ref wire.Snapshot
		refErr := Reference(data, &ref)

		if fast, err := generated(data); err == nil && fast.V == wire.Version {
			if refErr != nil {
				t.Fatalf("the generated decoders accept what the reference refuses (%v): %q", refErr, data)
			}
			if diff := cmp.Diff(ref, *fast); diff != "" {
				t.Fatalf("generated decoders on %q (-reference +generated):\n%s", data, diff)
			}
		}
		var sizes Sizes
		got, err := New().Snapshot(data, &sizes)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("decoder error %v, reference error %v, on %q", err, refErr, data)
		}
		if err == nil {
			if diff := cmp.Diff(ref, *got); diff != "" {
				t.Fatalf("decoder on %q (-reference +decoder):\n%s", data, diff)
			}
		}

		if !utf8.Valid(data) || !plainNames(data) {
			return // encoding/json's own rules apply
		}
		var std wire.Snapshot
		stdErr := wire.Decode(wire.Event{Data: data}, &std)
		if (stdErr == nil) != (refErr == nil) {
			t.Fatalf("encoding/json error %v, reference error %v, on %q", stdErr, refErr, data)
		}
		if stdErr == nil {
			if diff := cmp.Diff(ref, std); diff != "" {
				t.Fatalf("on %q (-reference +encoding/json):\n%s", data, diff)
			}
		}
	})
}

// plainNames reports whether every member name in data is named once in its object and
// is lower-case ASCII letters, digits and '_', as the wire's names are: encoding/json
// then matches names as the reference does.
func plainNames(data []byte) bool {
	if wire.CheckNames(data) != nil {
		return false
	}
	for _, name := range wire.MemberNames(data) {
		if strings.ContainsFunc(name, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') }) {
			return false
		}
	}
	return true
}

// generated decodes with the generated decoders alone, without falling back.
func generated(data []byte) (*wire.Snapshot, error) {
	d := New()
	d.begin(Sizes{})
	s := d.scanner(data)
	var snap wire.Snapshot
	err := d.decodeSnapshot(&s, &snap)
	if err == nil && s.peek() != 0 {
		err = errFast
	}
	return &snap, err
}

func TestFastSnapshotTakesRealisticEvents(t *testing.T) {
	data := snapshotJSON(nil)
	var general wire.Snapshot
	fast, err := generated(data)
	if err != nil {
		t.Fatalf("the generated decoders declined a realistic snapshot: %v", err)
	}
	if err := Reference(data, &general); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(general, *fast); diff != "" {
		t.Errorf("(-general +fast):\n%s", diff)
	}
	// Escaped strings and other forms are declined, not misread.
	for _, in := range [][]byte{
		bytes.Replace(data, []byte(`"dependency-1"`), []byte(`"dep\u0065ndency-1"`), 1),
		bytes.Replace(data, []byte(`"v":1,`), []byte(`"v":1,,`), 1),
		bytes.Replace(data, []byte(`"v":1,`), []byte(`"v":1,"v":1,`), 1),
		bytes.Replace(data, []byte(`"state":"closed",`), []byte(`"state":"closed","state":"open",`), 1),
		append(append([]byte(nil), data...), []byte(" {}")...),
	} {
		if _, err := generated(in); err == nil {
			t.Errorf("the generated decoders accepted %q", in[:min(len(in), 60)])
		}
	}
}

// Every field of the wire types is decoded by the generated decoders, a field added later
// included (once generated again): a snapshot with every field set comes back equal,
// without falling back.
func TestFastSnapshotEveryField(t *testing.T) {
	want := wiretest.Filled[wire.Snapshot](1)
	want.Breakers = append(want.Breakers, wiretest.Filled[wire.Breaker](2))
	data, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := generated(data)
	if err != nil {
		t.Fatalf("the generated decoders declined %s: %v", data, err)
	}
	if diff := cmp.Diff(want, *got); diff != "" {
		t.Errorf("(-sent +fast):\n%s", diff)
	}
}

var update = flag.Bool("update", false, "rewrite the every-field fuzz seed")

// The fuzz seeds hold every member name of the wire types, so that the fuzzer starts
// from inputs that exercise every field (regenerate the every-field seed with -update).
func TestFuzzSeedsHoldEveryField(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzFastSnapshot")
	every := filepath.Join(dir, "every-field")
	if *update {
		s := wiretest.Filled[wire.Snapshot](3)
		data, _ := json.Marshal(s)
		if err := os.WriteFile(every, []byte("go test fuzz v1\n[]byte("+strconv.Quote(string(data))+")\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		body, ok := strings.CutPrefix(strings.TrimSpace(string(raw)), "go test fuzz v1\n[]byte(")
		if !ok {
			continue
		}
		text, err := strconv.Unquote(strings.TrimSuffix(body, ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, member := range wire.MemberNames([]byte(text)) {
			seen[member] = true
		}
	}
	for _, name := range jsonNames(reflect.TypeOf(wire.Snapshot{})) {
		if !seen[name] {
			t.Errorf("no seed in %s holds the member %q (go test -run TestFuzzSeedsHoldEveryField -update)", dir, name)
		}
	}
}

// jsonNames lists the member names of t and of the types it holds.
func jsonNames(t reflect.Type) []string {
	var out []string
	var walk func(t reflect.Type)
	seenType := map[reflect.Type]bool{}
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seenType[t] || t == reflect.TypeOf(wire.Time{}) {
			return
		}
		seenType[t] = true
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "" && name != "-" && !slices.Contains(out, name) {
				out = append(out, name)
			}
			walk(f.Type)
		}
	}
	walk(t)
	return out
}

// A decoder's snapshots are their own: nothing of one shows through another, whatever
// each holds, and a snapshot stays as it was decoded however many follow it; thresholds
// are shared between the snapshots that hold the same.
func TestSnapshotsAreTheirOwn(t *testing.T) {
	rich := snapshotJSON(nil)
	filled, _ := json.Marshal(wiretest.Filled[wire.Snapshot](1))
	sparse := []byte(`{"v":1,"agent":{"v":1,"id":"b"},"seq":2,"sample":{"v":1,"interval_ms":500,"cpu":{"cores":0.5},"collectors":[]},"breakers":[{"v":1,"name":"x","state":"open","failure_rate":null,"calls":{}}]}`)
	empty := []byte(`{"v":1,"agent":{"v":1,"id":"c"},"sample":null,"breakers":[]}`)
	for _, order := range [][][]byte{{rich, sparse, filled, rich, empty, rich}, {sparse, rich, filled, sparse}, {filled, empty, sparse, empty}} {
		dec := New()
		var sizes Sizes
		var kept []*wire.Snapshot
		for _, data := range order {
			got, err := dec.Snapshot(data, &sizes)
			if err != nil {
				t.Fatal(err)
			}
			kept = append(kept, got)
		}
		for i, data := range order {
			var want wire.Snapshot
			if err := Reference(data, &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, *kept[i]); diff != "" {
				t.Fatalf("snapshot %d after %d more (-fresh +kept):\n%s", i, len(order)-1-i, diff)
			}
		}
	}
	dec := New()
	var sizes Sizes
	a, _ := dec.Snapshot(rich, &sizes)
	b, _ := dec.Snapshot(rich, &sizes)
	if a.Breakers[0].Thresholds != b.Breakers[1].Thresholds {
		t.Errorf("equal thresholds are not shared")
	}
	if a.Breakers[0].FailureRate == b.Breakers[0].FailureRate {
		t.Errorf("two snapshots share a figure")
	}
}

// The sizes an agent's message took are what its next one is given: a steady agent's
// snapshot takes one piece of memory per kind.
func TestSizesFollowTheAgent(t *testing.T) {
	data := snapshotJSON(nil)
	dec := New()
	var sizes Sizes
	if _, err := dec.Snapshot(data, &sizes); err != nil {
		t.Fatal(err)
	}
	if sizes[kindBreakerSlice] != 10 || sizes[kindFloat64] == 0 {
		t.Errorf("sizes = %v; want 10 breakers and the figures counted", sizes)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := dec.Snapshot(data, &sizes); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 16 {
		t.Errorf("%v allocations per snapshot once sized, want at most 16", allocs)
	}
}

// A transition is decoded with memory of its own, as the reference decodes it.
func TestTransition(t *testing.T) {
	tr := wiretest.Filled[wire.Transition](3)
	data, _ := json.Marshal(tr)
	got, err := New().Transition(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tr, got); diff != "" {
		t.Errorf("(-sent +decoded):\n%s", diff)
	}
	if _, err := New().Transition([]byte(`{"v":2,"to":"open"}`)); err == nil {
		t.Error("wire version 2 accepted")
	}
}

// The generated decoders are those the wire types call for now: a field added to
// internal/wire fails this test until go generate ./aggregator/decode is run.
func TestGeneratedIsCurrent(t *testing.T) {
	out := filepath.Join(t.TempDir(), "decode.go")
	cmd := exec.Command("go", "run", "./gen", "-o", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./gen: %v\n%s", err, msg)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("zz_generated.decode.go")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("zz_generated.decode.go is not what the wire types call for: run go generate ./aggregator/decode")
	}
}
