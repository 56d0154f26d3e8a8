package api

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/faultline-dev/faultline/aggregator/rewind"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// rewindSlots bounds the rewound views built at once: each merges the whole fleet as it
// was, so a client scrubbing fast costs at most this many merges, not one per request.
const rewindSlots = 2

// badAt is a rejected at parameter: the error, with the range that is allowed.
type badAt struct {
	Error    string    `json:"error"`
	Earliest wire.Time `json:"earliest"`
	Latest   wire.Time `json:"latest"`
}

// parseAt reads at: an RFC 3339 time, or a duration of zero or less counted back from now.
func parseAt(raw string, now time.Time) (time.Time, error) {
	if raw == "" {
		return time.Time{}, fmt.Errorf("required: an RFC 3339 time such as 2026-11-27T03:06:27Z, or a negative duration such as -90s")
	}
	if strings.HasPrefix(raw, "-") || strings.HasPrefix(raw, "+") {
		d, err := time.ParseDuration(raw)
		switch {
		case err != nil:
			return time.Time{}, fmt.Errorf("%q is not a duration such as -90s or -5m", raw)
		case d > 0:
			return time.Time{}, fmt.Errorf("%q is a positive duration: count back from now with a negative one, such as -%s", raw, raw[1:])
		}
		return now.Add(d), nil
	}
	// A query string decodes "+" as a space; an RFC 3339 time has no space, so a
	// space stands for the "+" of a time zone offset.
	t, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(raw, " ", "+"))
	if err == nil {
		return t, nil
	}
	if d, derr := time.ParseDuration(raw); derr == nil && d > 0 {
		return time.Time{}, fmt.Errorf("%q is a positive duration: count back from now with a negative one, such as -%s", raw, raw)
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time such as 2026-11-27T03:06:27Z, nor a negative duration such as -90s", raw)
}

func (s *server) snapshotAt(w http.ResponseWriter, r *http.Request) {
	ns, wl, err := scopeParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	now := s.Now()
	from, to := s.State.RewindRange(now)
	at, err := parseAt(r.URL.Query().Get("at"), now)
	at = at.UTC().Truncate(time.Millisecond) // the precision kept
	if err == nil && at.After(to) {
		err = fmt.Errorf("%s is in the future", at.UTC().Format(wire.TimeFormat))
	}
	if err == nil && at.Before(from) {
		err = fmt.Errorf("%s is older than what is kept (the history retention is %v)", at.UTC().Format(wire.TimeFormat), s.History.Retention())
	}
	if err != nil {
		msg := fmt.Sprintf("at: %v; the allowed range is %s to %s (or -%v to -0s)", err,
			from.Format(wire.TimeFormat), to.Format(wire.TimeFormat), to.Sub(from).Truncate(time.Second))
		writeJSON(w, http.StatusBadRequest, badAt{Error: msg, Earliest: wire.NewTime(from), Latest: wire.NewTime(to)})
		return
	}
	select {
	case s.rewinding <- struct{}{}:
		defer func() { <-s.rewinding }()
	case <-r.Context().Done():
		return
	}
	writeJSON(w, http.StatusOK, s.State.Rewound(at, now, ns, wl))
}

// windowParam reads a window: a duration from 1s to the history retention.
func (s *server) windowParam(q url.Values) (time.Duration, bool, error) {
	raw := q.Get("window")
	if raw == "" {
		return 0, false, nil
	}
	d, err := time.ParseDuration(raw)
	if err != nil {
		return 0, false, badParam{"window", fmt.Sprintf("%q is not a duration such as 5m or 1h", raw)}
	}
	if d < time.Second || d > s.History.Retention() {
		return 0, false, badParam{"window", fmt.Sprintf("%v is outside 1s to %v (the history retention)", d, s.History.Retention())}
	}
	return d, true, nil
}

// Breaker sorts by what a timeline says.
const (
	SortTransitions = "transitions"
	SortLongestOpen = "longest_open"
	SortOpenTime    = "open_time"
)

// timelines adds what every breaker did over window to the tiles and their pods, and
// orders the tiles by sort when it is one of the timeline sorts.
func timelines(tiles []view.BreakerTile, tl rewind.Timelines, sort string) {
	for i := range tiles {
		t := &tiles[i]
		t.Timeline = tl.Tiles[rewind.TileKey{Namespace: t.Namespace, Workload: t.Workload, Breaker: t.Name}]
		for j := range t.PerPod {
			p := &t.PerPod[j]
			p.Timeline = tl.Pods[rewind.PodKey{Namespace: t.Namespace, Pod: p.Pod, Breaker: t.Name}]
		}
	}
	by := map[string]func(*view.Timeline) float64{
		SortTransitions: func(x *view.Timeline) float64 { return float64(x.Transitions) },
		SortLongestOpen: func(x *view.Timeline) float64 { return x.LongestOpenMs },
		SortOpenTime:    func(x *view.Timeline) float64 { return x.OpenMs },
	}[sort]
	if by == nil {
		return
	}
	key := func(t view.BreakerTile) float64 {
		if t.Timeline == nil {
			return -1
		}
		return by(t.Timeline)
	}
	slices.SortStableFunc(tiles, func(a, b view.BreakerTile) int { return cmp.Compare(key(b), key(a)) })
}
