package store

// Defaults of [Options] that a zero field takes, exported so that front
// ends show the store's values instead of restating them.
const (
	// DefaultMaxObjectSize is Options.MaxObjectSize's default (when
	// MaxSize is not smaller).
	DefaultMaxObjectSize = 16 << 20
)
