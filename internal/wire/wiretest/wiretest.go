// Package wiretest builds wire messages with every field set, for tests that check that
// nothing is lost on the way: it walks the types by reflection, so a field added to
// internal/wire is covered without editing those tests.
package wiretest

import (
	"fmt"
	"reflect"
	"time"

	"github.com/faultline-dev/faultline/internal/wire"
)

// Filled returns a T with every field, at every depth, set to a value that is not the
// zero value and that passes the wire's checks: numbers are small and distinct and grow
// in field order (so latency percentiles do not decrease), strings name their field,
// states are half_open, times are distinct whole milliseconds, "v" is the wire version,
// and pointers, slices and maps hold one filled element. seed makes the values of two
// calls differ.
func Filled[T any](seed int) T {
	var v T
	f := filler{n: seed * 1000}
	f.fill(reflect.ValueOf(&v).Elem(), "")
	return v
}

type filler struct{ n int }

var (
	timeType  = reflect.TypeOf(wire.Time{})
	stateType = reflect.TypeOf(wire.BreakerState(""))
	base      = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
)

func (f *filler) next() int {
	f.n++
	return f.n
}

func (f *filler) fill(v reflect.Value, name string) {
	switch {
	case v.Type() == timeType:
		v.Set(reflect.ValueOf(wire.NewTime(base.Add(time.Duration(f.next()) * time.Millisecond))))
		return
	case v.Type() == stateType:
		v.SetString(string(wire.StateHalfOpen))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if sf := v.Type().Field(i); sf.IsExported() {
				f.fill(v.Field(i), sf.Name)
			}
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		f.fill(v.Elem(), name)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		f.fill(v.Index(0), name)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		f.fill(k, name+"Key")
		f.fill(e, name)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.String:
		v.SetString(fmt.Sprintf("%s-%d", name, f.next()))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		if name == "V" {
			v.SetInt(wire.Version)
			return
		}
		v.SetInt(int64(f.next() % 97))
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		v.SetUint(uint64(f.next()))
	case reflect.Float64, reflect.Float32:
		v.SetFloat(float64(f.next())/1000 + 0.25) // increasing, and a percentage for any seed below 99
	default:
		panic(fmt.Sprintf("wiretest: no value for %s of kind %s", name, v.Kind()))
	}
}

// Zero lists the paths of the fields of v that hold their zero value (nil pointers and
// empty slices included), walking structs, pointers, slices and maps: a message that went
// through a hop and came back with a path listed here lost that field.
func Zero(v any) []string {
	var out []string
	zeros(reflect.ValueOf(v), "", &out)
	return out
}

func zeros(v reflect.Value, path string, out *[]string) {
	if v.Type() == timeType {
		if v.Interface().(wire.Time).IsZero() {
			*out = append(*out, path)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if sf := v.Type().Field(i); sf.IsExported() {
				zeros(v.Field(i), path+"."+sf.Name, out)
			}
		}
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			*out = append(*out, path)
			return
		}
		zeros(v.Elem(), path, out)
	case reflect.Slice, reflect.Map:
		if v.Len() == 0 {
			*out = append(*out, path)
			return
		}
		if v.Kind() == reflect.Slice {
			for i := 0; i < v.Len(); i++ {
				zeros(v.Index(i), fmt.Sprintf("%s[%d]", path, i), out)
			}
		}
	default:
		if v.IsZero() {
			*out = append(*out, path)
		}
	}
}
