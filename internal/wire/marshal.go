package wire

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
)

// Marshal encodes v as JSON. A NaN or an infinity, which JSON cannot hold, does not fail
// the whole message: v is encoded again with each such figure left out (null where the
// field may be null, otherwise 0), and the paths of the figures are returned with the
// data so that the caller can log them. The checks of names and figures keep them out of
// what either side sends; this is the last line, so that one value can never take an
// API answer or an event stream down.
func Marshal(v any) (data []byte, dropped []string, err error) {
	data, err = json.Marshal(v)
	var unsupported *json.UnsupportedValueError
	if err == nil || !errors.As(err, &unsupported) {
		return data, nil, err
	}
	clean := reflect.New(reflect.TypeOf(v)).Elem()
	clean.Set(finiteCopy(reflect.ValueOf(v), "", &dropped))
	data, err = json.Marshal(clean.Interface())
	return data, dropped, err
}

// finiteCopy copies v, leaving out non-finite floats; it copies only what holds one.
func finiteCopy(v reflect.Value, path string, dropped *[]string) reflect.Value {
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			*dropped = append(*dropped, path)
			return reflect.Zero(v.Type())
		}
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		if k := v.Elem().Kind(); k == reflect.Float32 || k == reflect.Float64 {
			if f := v.Elem().Float(); math.IsNaN(f) || math.IsInf(f, 0) {
				*dropped = append(*dropped, path)
				return reflect.Zero(v.Type()) // null: unknown
			}
			return v
		}
		c := reflect.New(v.Type().Elem())
		c.Elem().Set(finiteCopy(v.Elem(), path, dropped))
		return c
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		c := reflect.New(v.Type()).Elem()
		c.Set(finiteCopy(v.Elem(), path, dropped))
		return c
	case reflect.Struct:
		c := reflect.New(v.Type()).Elem()
		c.Set(v)
		for i := 0; i < v.NumField(); i++ {
			if f := v.Type().Field(i); f.IsExported() {
				c.Field(i).Set(finiteCopy(v.Field(i), path+"."+f.Name, dropped))
			}
		}
		return c
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			c.Index(i).Set(finiteCopy(v.Index(i), path+"[]", dropped))
		}
		return c
	case reflect.Array:
		c := reflect.New(v.Type()).Elem()
		for i := 0; i < v.Len(); i++ {
			c.Index(i).Set(finiteCopy(v.Index(i), path+"[]", dropped))
		}
		return c
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			c.SetMapIndex(it.Key(), finiteCopy(it.Value(), path+"[]", dropped))
		}
		return c
	}
	return v
}
