package typednil

import (
	"io"
	"strings"
	"testing"
)

func TestIs(t *testing.T) {
	var nilReader *strings.Reader
	var nilFunc func()
	for _, tc := range []struct {
		name string
		v    any
		want bool
	}{
		{"nil", nil, true},
		{"typed nil pointer", nilReader, true},
		{"typed nil in an interface", io.Reader(nilReader), true},
		{"nil func", nilFunc, true},
		{"nil map", map[string]string(nil), true},
		{"pointer", strings.NewReader("x"), false},
		{"func", func() {}, false},
		{"empty map", map[string]string{}, false},
		{"value", 3, false},
		{"struct", struct{}{}, false},
	} {
		if got := Is(tc.v); got != tc.want {
			t.Errorf("%s: Is = %v, want %v", tc.name, got, tc.want)
		}
	}
}
