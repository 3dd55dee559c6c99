// Package typednil tells a nil interface value from one that holds a nil
// pointer, map, slice, func or chan: `k, _ := keyring.NewAES(bad, …)` gives
// a nil *keyring.AES, which becomes a non-nil keyring.Keyring that panics
// when used. Constructors refuse both.
package typednil

import "reflect"

// Is reports whether v is nil or holds a nil pointer, map, slice, func,
// chan or interface.
func Is(v any) bool {
	if v == nil {
		return true
	}
	switch r := reflect.ValueOf(v); r.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface, reflect.UnsafePointer:
		return r.IsNil()
	}
	return false
}
