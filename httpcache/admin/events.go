package admin

import (
	"sync"
	"time"
)

// DefaultEventBuffer is the events a subscriber may fall behind by before
// it is dropped.
const DefaultEventBuffer = 256

// Events is the hub of GET events: the server Publishes what happens
// (stores, purges, evictions, disables) and every subscriber gets a copy
// through a bounded buffer. Publish never blocks: a subscriber whose
// buffer is full is dropped (its Dropped channel closes, and the SSE
// handler sends it a "dropped" event and disconnects it), so a slow
// reader never slows the server. The zero value is not usable; call
// NewEvents. Safe for concurrent use.
type Events struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	buffer int
	now    func() time.Time
}

// NewEvents returns a hub whose subscribers buffer up to buffer events
// (<= 0 means DefaultEventBuffer).
func NewEvents(buffer int) *Events {
	if buffer <= 0 {
		buffer = DefaultEventBuffer
	}
	return &Events{subs: map[*Subscription]struct{}{}, buffer: buffer, now: time.Now}
}

// Subscription is one subscriber of an Events hub.
type Subscription struct {
	// C delivers the events in publication order.
	C       <-chan Event
	c       chan Event
	dropped chan struct{}
	hub     *Events
	once    sync.Once
}

// Dropped is closed when the subscriber fell behind and was removed;
// events still in C may be read, but no more will come.
func (s *Subscription) Dropped() <-chan struct{} { return s.dropped }

// Close unsubscribes. It is idempotent.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	delete(s.hub.subs, s)
	s.hub.mu.Unlock()
}

// Subscribe adds a subscriber; Close it when done.
func (e *Events) Subscribe() *Subscription {
	c := make(chan Event, e.buffer)
	s := &Subscription{C: c, c: c, dropped: make(chan struct{}), hub: e}
	e.mu.Lock()
	e.subs[s] = struct{}{}
	e.mu.Unlock()
	return s
}

// Publish sends ev to every subscriber without blocking; a zero Time is
// set to now. Subscribers that have no room are dropped.
func (e *Events) Publish(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = e.now().UTC()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for s := range e.subs {
		select {
		case s.c <- ev:
		default:
			delete(e.subs, s)
			s.once.Do(func() { close(s.dropped) })
		}
	}
}

// Subscribers returns the number of current subscribers.
func (e *Events) Subscribers() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.subs)
}
