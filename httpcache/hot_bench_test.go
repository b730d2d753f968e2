package httpcache

import (
	"fmt"
	"testing"
	"time"

	"github.com/firstrender/firstrender/store"
)

// BenchmarkHotGet measures the memory tier's lookup of a resident entry
// (hotCache.get: shard, map, reference bit, the admission sketch's
// count), on one key and over 10,000 keys, from every P at once.
func BenchmarkHotGet(b *testing.B) {
	for _, n := range []int{1, 10_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			st, err := store.Open(b.TempDir()+"/hot.db", store.Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			var h hotCache
			h.init(512<<20, st) // room for 10,000 entries of 20 KB in every shard
			now := time.Now()
			hks := make([][]byte, n)
			body := make([]byte, 20<<10)
			for i := range hks {
				k := fmt.Sprintf("http://x/p%d", i)
				hks[i] = appendHotKey(nil, k, "")
				e := &entry{rec: &store.Record{Key: k, Body: body}}
				for range 2 {
					h.put(h.before(hks[i]), hks[i], e, now)
				}
				if h.get(hks[i], now) == nil {
					b.Fatal("not admitted")
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if h.get(hks[i], now) == nil {
						b.Error("not resident")
						return
					}
					if i++; i == n {
						i = 0
					}
				}
			})
		})
	}
}
