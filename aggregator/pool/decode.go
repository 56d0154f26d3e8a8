package pool

import (
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/faultline-dev/faultline/internal/wire"
)

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
// implementation, about twice as fast as encoding/json on snapshots.
func decode[T interface{ WireVersion() int }](data []byte, v *T) error {
	if err := jsonv2.Unmarshal(data, v); err != nil {
		return err
	}
	if got := (*v).WireVersion(); got != wire.Version {
		return fmt.Errorf("wire version %d, want %d", got, wire.Version)
	}
	return nil
}
