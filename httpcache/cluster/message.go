package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/firstrender/firstrender/store"
)

// Selector says what an invalidation covers. Exactly one of Keys, Prefix,
// Tag and All is set. Keys are normalized primary keys (httpcache's
// request keys; a page URL must be normalized before it gets here), each
// covering every variant. Soft marks entries stale instead of deleting
// them; it cannot be combined with All. It mirrors httpcache/admin's
// PurgeRequest (Key and Keys fold into Keys; URL is normalized to a key).
type Selector struct {
	Keys   []string `json:"keys,omitempty"`
	Prefix string   `json:"prefix,omitempty"`
	Tag    string   `json:"tag,omitempty"`
	All    bool     `json:"all,omitempty"`
	Soft   bool     `json:"soft,omitempty"`
}

// Limits of one message.
const (
	MaxKeys      = 10000   // keys in one Selector
	MaxPrefix    = 1024    // bytes of Selector.Prefix (httpcache/admin.MaxPrefix)
	MaxKeyLen    = 8 << 10 // bytes of one key or tag
	maxMessageSz = 1 << 20 // encoded message; NATS' default max payload
)

// ErrInvalid is wrapped by the errors for a selector or message that
// cannot be applied.
var ErrInvalid = errors.New("cluster: invalid selector")

// Validate checks sel, returning an error wrapping ErrInvalid.
func (sel Selector) Validate() error {
	n := 0
	if len(sel.Keys) > 0 {
		n++
		if len(sel.Keys) > MaxKeys {
			return fmt.Errorf("%w: %d keys, at most %d in one purge", ErrInvalid, len(sel.Keys), MaxKeys)
		}
		for _, k := range sel.Keys {
			if k == "" || len(k) > MaxKeyLen || strings.IndexByte(k, 0) >= 0 {
				return fmt.Errorf("%w: key %.80q: empty, longer than %d bytes or with NUL", ErrInvalid, k, MaxKeyLen)
			}
		}
	}
	if sel.Prefix != "" {
		n++
		if len(sel.Prefix) > MaxPrefix || strings.IndexByte(sel.Prefix, 0) >= 0 {
			return fmt.Errorf("%w: prefix longer than %d bytes or with NUL", ErrInvalid, MaxPrefix)
		}
	}
	if sel.Tag != "" {
		n++
		if len(sel.Tag) > MaxKeyLen || strings.IndexByte(sel.Tag, 0) >= 0 {
			return fmt.Errorf("%w: tag longer than %d bytes or with NUL", ErrInvalid, MaxKeyLen)
		}
	}
	if sel.All {
		n++
		if sel.Soft {
			return fmt.Errorf("%w: a soft purge of all", ErrInvalid)
		}
	}
	if n != 1 {
		return fmt.Errorf("%w: set exactly one of keys, prefix, tag, all (got %d)", ErrInvalid, n)
	}
	return nil
}

// Kind is a message's kind.
type Kind string

// Message kinds. Soft is a flag on key, prefix and tag messages.
const (
	KindKey    Kind = "key"    // Selector.Keys: every variant of each key
	KindPrefix Kind = "prefix" // Selector.Prefix
	KindTag    Kind = "tag"    // Selector.Tag
	KindAll    Kind = "all"    // purge-all (an epoch)
	// KindUnsafe is the RFC 9111 §4.4 invalidation of the target URI (and
	// same-origin Location / Content-Location) after an unsafe method a
	// node proxied: Selector.Keys.
	KindUnsafe Kind = "unsafe"
)

func kindOf(sel Selector) Kind {
	switch {
	case len(sel.Keys) > 0:
		return KindKey
	case sel.Prefix != "":
		return KindPrefix
	case sel.Tag != "":
		return KindTag
	default:
		return KindAll
	}
}

// messageVersion is the wire format of Message.
const messageVersion = 1

// Message is one invalidation in the stream, JSON encoded. ID is the
// deduplication id (Nats-Msg-Id): "<node>.<unix-ns base 36>.<random>".
type Message struct {
	V    int       `json:"v"`
	ID   string    `json:"id"`
	Kind Kind      `json:"kind"`
	Node string    `json:"node"` // the node that published it
	Time time.Time `json:"time"` // when it was made, on that node's clock
	Selector
}

// newMessage makes a message for sel from node.
func newMessage(node string, kind Kind, sel Selector, now time.Time) Message {
	var r [6]byte
	_, _ = rand.Read(r[:])
	id := node + "." + strconv.FormatInt(now.UnixNano(), 36) + "." + hex.EncodeToString(r[:])
	return Message{V: messageVersion, ID: id, Kind: kind, Node: node, Time: now.UTC(), Selector: sel}
}

func (m *Message) encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > maxMessageSz {
		return nil, fmt.Errorf("%w: encoded purge is %d bytes, at most %d (send fewer keys)", ErrInvalid, len(b), maxMessageSz)
	}
	return b, nil
}

// DecodeMessage parses and checks one message from the stream. The error
// wraps ErrInvalid for anything this binary cannot apply (a newer version,
// an unknown kind, a selector that does not match its kind).
func DecodeMessage(b []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return Message{}, fmt.Errorf("%w: message: %v", ErrInvalid, err)
	}
	if m.V != messageVersion {
		return Message{}, fmt.Errorf("%w: message version %d, this binary knows %d", ErrInvalid, m.V, messageVersion)
	}
	if m.ID == "" || len(m.ID) > 255 {
		return Message{}, fmt.Errorf("%w: message id empty or too long", ErrInvalid)
	}
	if err := m.Selector.Validate(); err != nil {
		return Message{}, err
	}
	want := kindOf(m.Selector)
	if m.Kind != want && !(m.Kind == KindUnsafe && want == KindKey && !m.Soft) {
		return Message{}, fmt.Errorf("%w: message kind %q with a %s selector", ErrInvalid, m.Kind, want)
	}
	return m, nil
}

// invalidation is sel as the store applies it.
func (n *Node) invalidation(sel Selector) store.Invalidation {
	inv := store.Invalidation{Keys: sel.Keys, Prefix: sel.Prefix, Tag: sel.Tag, All: sel.All}
	if sel.Soft && n.deps.SoftMark != nil {
		inv.Mark = n.deps.SoftMark()
	}
	return inv
}
