package httpcache

import (
	"net/http"
	"reflect"
	"testing"
)

func TestStoredHeader(t *testing.T) {
	in := http.Header{"Connection": {"X-A"}, "X-A": {"1"}, "Age": {"5"}, "Cache-Status": {"up; hit"}, "Etag": {`"e"`}}
	got := storedHeader(in)
	want := http.Header{"Etag": {`"e"`}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("storedHeader(%v) = %v, want %v", in, got, want)
	}
	if len(in) != 5 {
		t.Errorf("storedHeader modified its input: %v", in)
	}
}
