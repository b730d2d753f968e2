package cluster

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// TestCluster_OwnInvalidationNotReapplied: a node applies its own purge
// (and its own unsafe-method invalidation) when it makes it; when the
// stream delivers it back, the node records the sequence without applying
// it again, so a page stored on it after the purge (a fill that started
// afterwards) survives, while the other nodes apply it. The node's
// consumer is held (in the Purger) at any re-apply of the key until the
// fresh page is stored, so the re-apply, if there is one, comes after it.
func TestCluster_OwnInvalidationNotReapplied(t *testing.T) {
	c := newCluster(t)
	ctx := ctxT(t)
	a, b := c.nodes[0], c.nodes[1]
	for _, tt := range []struct {
		name   string
		key    string
		invoke func(key string) (Result, error)
	}{
		{"purge", "https://a.test/own-purge", func(key string) (Result, error) {
			return a.n.Purge(ctx, Selector{Keys: []string{key}})
		}},
		{"unsafe", "https://a.test/own-unsafe", func(key string) (Result, error) {
			return a.n.Unsafe(ctx, []string{key})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, tn := range c.nodes {
				put(t, tn.st, tt.key, "")
			}
			stored := make(chan struct{})
			var once sync.Once
			var calls atomic.Int32
			a.purger.setHold(func(sels []Selector) {
				for _, s := range sels {
					if slices.Contains(s.Keys, tt.key) {
						// The local apply is the first call; any later one re-applies.
						if calls.Add(1) > 1 {
							<-stored
						}
					}
				}
			})
			defer a.purger.setHold(nil)
			defer once.Do(func() { close(stored) }) // never leave the consumer held
			res, err := tt.invoke(tt.key)
			if err != nil || res.Count != 1 {
				t.Fatalf("invalidate %s through a = %+v, %v; want 1 record, no error", tt.key, res, err)
			}
			if has(a.st, tt.key, "") {
				t.Fatalf("a: %s still there right after its own invalidation", tt.key)
			}
			// A fill that started after the invalidation stores a fresh page.
			put(t, a.st, tt.key, "")
			once.Do(func() { close(stored) })
			waitApplied(t, a, res.ID)
			seq := res.Sequence
			if seq == 0 { // unsafe: published in the background; find its sequence on b
				waitApplied(t, b, res.ID)
				seq = b.st.AppliedSequence()
			}
			waitFor(t, a.n, "a applied sequence "+tt.key, func() bool { return a.st.AppliedSequence() >= seq })
			waitFor(t, b.n, "b applied sequence "+tt.key, func() bool { return b.st.AppliedSequence() >= seq })
			if !has(a.st, tt.key, "") {
				t.Errorf("a: the page stored after its own invalidation (sequence %d) was deleted when the stream delivered it back", seq)
			}
			if n := a.appliedCount(res.ID); n != 1 {
				t.Errorf("a: OnApply for its own message %d times, want 1", n)
			}
			if has(b.st, tt.key, "") {
				t.Errorf("b: %s still there after applying sequence %d", tt.key, seq)
			}
		})
	}
}
