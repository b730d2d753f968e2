// Package store is firstrender's page store: cached responses ("records")
// in one bbolt file, with keys, variants, tags, sizes, expiry, eviction,
// purges and paged listing. It knows nothing of HTTP; httpcache gives the
// fields their meaning.
//
// # Records and keys
//
// A [Record] is addressed by a primary key (opaque, non-empty, no NUL byte;
// httpcache uses the normalized URL) and a variant within it ("" for the
// sole variant). Records sort by key, then variant. [Meta] is a record
// without its header and body; listings ([Store.Scan], [Store.Variants])
// return Meta and read only each record's metadata section.
// [Store.Lookup] lists a key's variants and reads the one its callback
// picks in one read transaction (a cache's lookup of a key whose variant
// it cannot name yet).
//
// # Layout
//
// A record's value (metadata, header fields, and a body of up to 2 KiB)
// lives in the rec bucket, keyed by key NUL variant. A larger body is
// kept apart, in a bucket of its own nested in the body bucket under the
// same key: the leaves that listings, Variants and metadata reads walk
// hold no large body, and a write or removal of one body writes or frees
// that body's pages only (bbolt rewrites a whole leaf, at least two
// values, when one of its values changes). [Meta.Size] and [Stats.Bytes]
// count the body wherever it is.
//
// # Encoding and damage
//
// Each record is stored in a versioned binary encoding with CRC-32C
// checksums: one over the metadata, one over the header fields and one
// over the body (version 1: one over the header and body together). A
// record that fails its checks is never returned as data: [Store.Get]
// returns a [*CorruptError] (errors.Is(err, [ErrCorrupt])), listings flag
// it with [Meta.Corrupt], and [Store.Delete] removes it. [Store.Check]
// verifies the whole file (an O(n) scan, for operators). An unknown record
// version is reported the same way, wrapping [ErrVersion]. A body kept
// apart is checked by its own checksum (in the metadata) on every full
// read; a missing one is damage too, and Check also reports a body left
// without its record. The file carries a format version
// ([FormatVersion], 2 since the body bucket); [Open] refuses a newer one
// with [ErrVersion]. A read-write Open upgrades a format-1 file in place
// (one small transaction: the body bucket and the new format number, so
// that an older binary then refuses the file rather than misread it); its
// version-1 records are read as they are, and rewritten as version 2 by
// the next write of each (Put, Annotate) and by [Store.Compact] and
// [Store.CompactInPlace]. A read-only Open changes nothing.
//
// # Opening
//
// [Open] always sets a file-lock timeout ([Options.Timeout], default 1s),
// so it never hangs on a file another process holds; it then fails with
// [ErrLocked]. A file that is not a bbolt database, or not a firstrender
// store, gives [ErrCorrupt]; missing permission gives an error matching
// [io/fs.ErrPermission]. All are wrapped in an [*OpenError] naming the
// path. [Options.ReadOnly] opens for inspection with a shared lock. Open
// reads only a small meta bucket (and, once, upgrades a format-1 file:
// one small write), so it takes the same time for a million records as
// for ten.
//
// # Writes and durability
//
// Writes ([Store.Put], deletes, [Store.Annotate]) are queued to one writer
// goroutine, which runs everything queued at that moment in one
// transaction: concurrent writers share a commit and its fsync (group
// commit). Every write method returns only after its transaction has
// committed, so an acknowledged purge survives a crash (kill -9), and a
// record is either whole or absent afterwards. Deletes of many records are
// split into transactions of 10,000. [Store.PutDeferred] is a Put nobody
// waits on (a cache fill stored after its response was sent): when the
// writer holds only such writes it waits for more to share the commit and
// its fsyncs, until [Options.CommitDelay] (default 10ms) passes without
// one and for at most [Options.MaxCommitDelay] (default 80ms); any other
// write, or [Store.Nudge], ends the wait, and PutDeferred too returns
// only after its commit.
//
// # Bounds and eviction
//
// [Options.MaxObjectSize] bounds one record ([ErrTooLarge]).
// [Options.MaxSize] bounds the bytes of stored records ([Stats.Bytes]):
// when a commit takes the store over it, a background goroutine removes
// records until the store is under 90% of MaxSize, in this order:
//
//  1. records whose Expires has passed, earliest expiry first;
//  2. then least recently used first, by access time (the Put, or the
//     latest Get, pending ones included), ties in key order.
//
// Access times are kept in memory and written lazily: Get, Lookup and
// Touch never write. A record's access time is the Put's, moved to an
// access at least [Options.AccessGranularity] (default 30s) later, so LRU
// order holds to within that, and a moved time stays pending in memory
// until it is written: every [Options.AccessFlushInterval] (default 5
// minutes), on Close, when 131,072 are pending, and by eviction, which
// gives a record at the front of the LRU order with a later pending time
// a second chance (it re-times it in its own transaction and moves on), so
// the records evicted are those of writing every access at once. Listings
// ([Meta.LastAccess]) show pending times too. A flush commits at most
// 2,000 records per transaction, so other writes (a purge) commit in
// between. Reads that change nothing cost nothing: the store keeps a
// lossy, lock-free table of lower bounds of each key's access time (stored
// or pending; 2 MiB, about 262,000 keys), and a Get within
// AccessGranularity of it takes no lock; any other read decides under a
// lock with the stored time from its own read transaction, so the table
// changes no decision. After a crash, accesses since the last flush are
// lost, which only makes those records look older. Eviction works in
// transactions of 1,000 records and never blocks readers: bbolt readers
// see a snapshot.
//
// The bbolt file itself never shrinks; [Store.Compact] writes a compacted
// copy.
//
// # Annotations
//
// [Record.Annotations] is a small string map the packages above the store
// write facts into (freshness policy, lint findings, token hashes, join
// failures); [Store.Annotate] changes it in place. The store gives the keys
// no meaning. Each key is declared once, as an exported constant of the
// package that writes it, and named "<package>.<name>"; docs/annotations.md
// lists every key, its writer and its value format.
//
// # Statistics
//
// [Store.Stats] is O(1): the counters are kept in the meta bucket, updated
// in the same transaction as every write, and loaded by Open.
// [Store.Generation] is a lock-free counter that advances after every
// committed change to records, for callers that keep records in memory and
// need a cheap check that the store has not changed since.
//
// # Concurrency
//
// A [*Store] is safe for concurrent use by any number of goroutines.
// Readers run in bbolt read transactions, in parallel with each other and
// with the writer. Values returned are copies owned by the caller: bbolt's
// values are valid only inside their transaction, so a read copies what
// it returns out of the memory map before the transaction ends, and never
// holds it while the caller uses the result (a long-lived reader would
// hold back the re-map a growing file needs). [Store.GetInto] and
// [Store.LookupInto] let the caller supply the memory the body is copied
// into ([BodyBuffer]), so that it can reuse buffers. Methods
// that may block take a context: reads check it before starting; writes
// honour it while waiting for room in the write queue, and once queued wait
// for the commit, so that their result is always known.
package store
