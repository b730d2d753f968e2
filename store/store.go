package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FormatVersion is the on-disk format this binary writes. Open refuses a
// file whose format is newer (ErrVersion). Format 2 added the body bucket
// (record encoding version 2 keeps bodies above 2 KiB out of the records'
// leaves, see record.go); a read-write Open upgrades a format-1 file in
// place (it adds the bucket and records format 2, in one transaction, so
// a binary that knows only format 1 then refuses the file instead of
// misreading it), and its version-1 records are read as they are and
// rewritten as version 2 when next written or compacted.
const FormatVersion = 2

// formatBody is the first format with the body bucket.
const formatBody = 2

// Options configure Open. The zero value is a usable read-write store with
// no size bound.
type Options struct {
	// Timeout is how long Open waits for the file lock held by another
	// process. Zero means 1s; Open never waits forever. Negative is invalid.
	Timeout time.Duration
	// ReadOnly opens the file for inspection with a shared lock: writes
	// return ErrReadOnly, and a process holding the file read-write makes
	// Open fail with ErrLocked.
	ReadOnly bool
	// MaxSize bounds the bytes of stored records (Stats.Bytes, not the file
	// size; see Compact). Zero means unbounded. When a write takes the
	// store over MaxSize, a background evictor removes records, expired
	// first, then least recently used, until it is under 90% of MaxSize.
	MaxSize int64
	// MaxObjectSize bounds one encoded record; Put of a bigger one returns
	// ErrTooLarge. Zero means 16 MiB, or MaxSize if that is smaller. A value
	// above a non-zero MaxSize is invalid.
	MaxObjectSize int64
	// NoSync skips fsync on commit. For tests and benchmarks only: a crash
	// of the machine (not of the process) may then lose or damage data.
	NoSync bool
	// Logger receives background errors (eviction, access-time flushes).
	// Nil means log nothing.
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// AccessFlushInterval is how often the access times that Get, Lookup
	// and Touch keep in memory are written to the file, in transactions
	// of at most 2,000 records between which other writes commit. Zero
	// means 5 minutes. It bounds only what a crash loses (those records
	// then look older than they are): while the store runs, eviction
	// and listings (Meta.LastAccess) consult the pending times, so the
	// LRU order does not depend on it. Pending times are also written on
	// Close, by Compact, when 131,072 keys are pending, and, for the
	// records about to be evicted, by eviction itself. The longer it is,
	// the fewer times a record read over and over is written: at most
	// once per interval instead of once per AccessGranularity.
	AccessFlushInterval time.Duration
	// AccessGranularity is how far apart two access times of a record
	// must be for the later one to count: an access less than this after
	// the record's access time (the Put, or the access that last moved
	// it) changes nothing, so a record read over and over moves once per
	// AccessGranularity, and LRU eviction orders records by their latest
	// access to within this (Meta.LastAccess lags by less than it). Such
	// reads cost no lock: a Get within AccessGranularity of its record's
	// access time as far as the store knows it (a lock-free table filled
	// by commits and by the reads that move access times; see the package
	// doc) records nothing at all. Zero means 30s (the memory tier above
	// touches a record at most that often anyway); a negative value
	// counts every later access.
	AccessGranularity time.Duration
	// CommitDelay is how long the writer may hold a transaction open for
	// more writes when every write it holds came from [Store.PutDeferred]:
	// writes that trickle in (cache fills of a mostly-hit workload) then
	// share one commit and its fsyncs instead of paying one each. Any other
	// write, or [Store.Nudge], ends the wait at once. The wait lasts until
	// CommitDelay has passed without a new deferred write, so while they
	// keep arriving it goes on, up to MaxCommitDelay in all. Zero means
	// 10ms; a negative value never waits.
	CommitDelay time.Duration
	// MaxCommitDelay bounds that wait while deferred writes keep arriving
	// (a stream of cache misses): the longer it is, the more of them share
	// a commit, whose two fdatasyncs and index pages cost the same
	// whether they carry 3 records or 300, and the longer a fill waits to
	// be readable from the file (its response was sent long before). Zero
	// means 8 × CommitDelay (80ms by default); a value below CommitDelay
	// means CommitDelay.
	MaxCommitDelay time.Duration
	// ExpireInterval, if positive, runs RemoveExpired(Now()) in the
	// background at that interval. Zero means never: call RemoveExpired
	// yourself (eviction under MaxSize takes expired records first anyway).
	ExpireInterval time.Duration
	// SetAsideCorrupt treats a damaged file as disposable, as a cache
	// may: a read-write Open that finds the file not a firstrender store,
	// truncated or damaged (ErrCorrupt; not ErrVersion, ErrLocked or a
	// permission error) renames it to <path>.corrupt-<UTC time> and
	// starts empty at path; and when a read or write meets a damaged page
	// at run time (bbolt panics or fails a page assertion), the store sets
	// the file aside the same way and continues on a fresh empty file
	// while serving goes on. Each is logged once (Warn, with the new name
	// and the reason) and counted in [Health]. False means Open fails
	// with ErrCorrupt and run-time damage is only reported as errors.
	SetAsideCorrupt bool
	// WriteFault, if set, is called before every write transaction; a
	// non-nil error fails that transaction as a failing disk would (a
	// *WriteError whose Cause is classified from it: wrap syscall.ENOSPC
	// for a full disk, syscall.EROFS for a read-only one). It is for
	// fault-injection tests of the layers above; nil in production.
	WriteFault func() error

	evictDone   chan int     // tests: receives each background eviction's count
	lingering   chan int     // tests: receives a deferred batch's size when the writer starts waiting for company
	lingerAdded chan int     // tests: receives the batch's size after each deferred write added while waiting
	lingerClock *lingerClock // tests: the waiting writer's clock and timers; nil means time.Now, time.After
	expireDone  chan int     // tests: receives each background expiry sweep's count
	flushStep   func(int)    // tests: called after each committed transaction of an access-time flush, with the times it took
	chunk       int          // records per step of a bulk delete; 0 means defaultChunk (tests lower it)
	knownAtimes int          // slots of the table of stored access times; 0 means defaultKnownAtimes, negative none (tests)
}

const (
	defaultTimeout           = time.Second
	defaultMaxObjectSize     = DefaultMaxObjectSize
	defaultAccessFlush       = 5 * time.Minute
	defaultAccessGranularity = 30 * time.Second
	defaultCommitDelay       = 10 * time.Millisecond
	// MaxCommitDelay's default, in CommitDelays.
	defaultMaxCommitDelayRounds = 8
)

func (o *Options) setDefaults() error {
	if o.Timeout < 0 || o.MaxSize < 0 || o.MaxObjectSize < 0 || o.AccessFlushInterval < 0 || o.ExpireInterval < 0 {
		return fmt.Errorf("negative Timeout, MaxSize, MaxObjectSize, AccessFlushInterval or ExpireInterval: %w", ErrInvalid)
	}
	if o.Timeout == 0 {
		o.Timeout = defaultTimeout
	}
	if o.MaxSize > 0 && o.MaxObjectSize > o.MaxSize {
		return fmt.Errorf("MaxObjectSize %d is above MaxSize %d: %w", o.MaxObjectSize, o.MaxSize, ErrInvalid)
	}
	if o.MaxObjectSize == 0 {
		o.MaxObjectSize = defaultMaxObjectSize
		if o.MaxSize > 0 && o.MaxSize < o.MaxObjectSize {
			o.MaxObjectSize = o.MaxSize
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AccessFlushInterval == 0 {
		o.AccessFlushInterval = defaultAccessFlush
	}
	switch {
	case o.CommitDelay == 0:
		o.CommitDelay = defaultCommitDelay
	case o.CommitDelay < 0:
		o.CommitDelay = 0
	}
	if o.MaxCommitDelay == 0 {
		o.MaxCommitDelay = defaultMaxCommitDelayRounds * o.CommitDelay
	}
	o.MaxCommitDelay = max(o.MaxCommitDelay, o.CommitDelay)
	switch {
	case o.AccessGranularity == 0:
		o.AccessGranularity = defaultAccessGranularity
	case o.AccessGranularity < 0:
		o.AccessGranularity = 0
	}
	if o.chunk <= 0 {
		o.chunk = defaultChunk
	}
	return nil
}

// Bucket names and meta keys.
var (
	bucketMeta  = []byte("meta")  // format version, counters
	bucketRec   = []byte("rec")   // key NUL variant -> encoded record
	bucketBody  = []byte("body")  // key NUL variant -> bucket {"b": body} (record version 2, bodies above inlineBodyMax)
	bucketTag   = []byte("tag")   // tag NUL key NUL variant -> empty
	bucketExp   = []byte("exp")   // 8-byte BE expiry ns, key NUL variant -> empty
	bucketAtime = []byte("atime") // key NUL variant -> 8-byte BE access ns
	bucketLRU   = []byte("lru")   // 8-byte BE access ns, key NUL variant -> empty

	dataBuckets = [][]byte{bucketRec, bucketBody, bucketTag, bucketExp, bucketAtime, bucketLRU}

	metaFormat   = []byte("format")
	metaCounters = []byte("counters")
)

// counters are persisted in the meta bucket in every write transaction, so
// Stats is O(1) and Open does not scan.
type counters struct {
	Records, Bytes, Evictions, Expired int64
}

func (c counters) encode() []byte {
	b := make([]byte, 32)
	binary.BigEndian.PutUint64(b[0:], uint64(c.Records))
	binary.BigEndian.PutUint64(b[8:], uint64(c.Bytes))
	binary.BigEndian.PutUint64(b[16:], uint64(c.Evictions))
	binary.BigEndian.PutUint64(b[24:], uint64(c.Expired))
	return b
}

func decodeCounters(b []byte) (counters, bool) {
	if len(b) != 32 {
		return counters{}, false
	}
	return counters{
		Records:   int64(binary.BigEndian.Uint64(b[0:])),
		Bytes:     int64(binary.BigEndian.Uint64(b[8:])),
		Evictions: int64(binary.BigEndian.Uint64(b[16:])),
		Expired:   int64(binary.BigEndian.Uint64(b[24:])),
	}, true
}

// Stats are the store's figures. Reading them is O(1).
type Stats struct {
	Records int64 // records stored
	Bytes   int64 // bytes of stored records (sum of Meta.Size)
	// FileSize is the size of the database's pages after the last commit
	// (bbolt's high-water mark; the file may be preallocated beyond it).
	// It never shrinks; Compact writes a smaller copy.
	FileSize  int64
	Evictions int64 // records removed to stay under MaxSize (ever)
	Expired   int64 // records removed by RemoveExpired or eviction of expired records (ever)
	// Corrupt counts reads (Get, Scan, Variants) that met a damaged record
	// since Open: an event count, not the number of damaged records (the
	// same record read twice counts twice, and deleting it lowers nothing;
	// Check counts them).
	Corrupt int64
	MaxSize int64 // Options.MaxSize
	// Commits and Writes count write transactions and write operations
	// since Open; Writes/Commits is the write coalescing factor.
	Commits, Writes int64
	// PendingAccess is the number of access times held in memory, not yet
	// written to the file (some may be of records since removed or put
	// again, dropped by the next flush). An access within
	// Options.AccessGranularity of its record's access time changes
	// nothing and is not held.
	PendingAccess int64
}

// Store is a page store in one bbolt file. All methods are safe for
// concurrent use by multiple goroutines.
type Store struct {
	path string
	opts Options
	db   atomic.Pointer[bolt.DB] // replaced by swapDB (compact.go): swapFresh, compactNow
	log  *slog.Logger

	// closeMu guards closed and sends on ops: senders hold it for reading.
	closeMu    sync.RWMutex
	closed     bool
	ops        chan *op
	nudge      chan struct{} // Nudge: end a deferred commit's wait
	nudgedAt   atomic.Int64  // Nudge: when (Unix ns, the linger clock) it was last called
	writerDone chan struct{}

	// published counters (written by the writer after each commit).
	records, bytes, evictions, expired atomic.Int64
	fileSize, corrupt, commits, writes atomic.Int64
	cnt                                counters   // writer-owned
	changeBuf                          changeList // writer-owned: the last transaction's change list, reused
	// generation counts committed transactions that changed records; see
	// Generation.
	generation atomic.Uint64

	access accessTracker
	// atimeNotes is the writer's buffer for wtx.atimes, reused between
	// transactions.
	atimeNotes []atimeNote
	watch      watchers
	// cl is the cluster state (applied.go): applied sequence, purge-all epoch.
	cl clusterState

	bgCancel  context.CancelFunc
	bgWG      sync.WaitGroup
	evictKick chan struct{}

	health   healthTracker
	damagedC chan damaged     // readers' reports of damaged pages, for the writer
	compactC chan *compactReq // CompactInPlace's requests, for the writer (unbuffered)
	// compactHook, if set (tests), is called before each step of
	// compactNow (copy, reopen, verify, rename); an error fails that step.
	compactHook func(step string) error
	oldWG       sync.WaitGroup // closing files set aside
}

// Open opens (creating if needed, unless read-only) the store at path.
// Errors are *OpenError naming path and wrapping ErrLocked, ErrCorrupt,
// ErrVersion, ErrInvalid or the operating system's error (fs.ErrPermission,
// fs.ErrNotExist, syscall.EISDIR for a directory). Open reads only the meta bucket: its cost does not
// grow with the number of records.
func Open(path string, opts Options) (*Store, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, &OpenError{Path: path, Err: err}
	}
	// bbolt opens a directory read-only without complaint and then finds
	// no database in it: say what it is, not "corrupt" (which invites
	// moving a directory aside).
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, &OpenError{Path: path, Err: &fs.PathError{Op: "open", Path: path, Err: syscall.EISDIR}}
	}
	s, err := open(path, opts)
	if err != nil && errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) && opts.SetAsideCorrupt && !opts.ReadOnly {
		aside, aerr := setAsideAtOpen(path, opts, err)
		if aerr != nil {
			return nil, &OpenError{Path: path, Err: fmt.Errorf("%w (%v)", err, aerr)}
		}
		if s, err = open(path, opts); err == nil {
			s.health.setAside.Store(1)
			s.health.asidePath.Store(&aside)
		}
	}
	if err != nil {
		return nil, &OpenError{Path: path, Err: err}
	}
	return s, nil
}

// open is Open without setting a damaged file aside.
func open(path string, opts Options) (*Store, error) {
	if !opts.ReadOnly {
		if err := precheck(path, opts); err != nil {
			return nil, err
		}
	}
	db, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{path: path, opts: opts, log: opts.Logger}
	s.db.Store(db)
	s.generation.Store(1)
	s.health.state.Store(&healthState{since: opts.Now()})
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	if !opts.ReadOnly {
		s.damagedC = make(chan damaged, 1)
		s.compactC = make(chan *compactReq)
		s.ops = make(chan *op, 1024)
		s.nudge = make(chan struct{}, 1)
		s.writerDone = make(chan struct{})
		s.access.init(opts.knownAtimes, opts.AccessGranularity, opts.Now())
		s.evictKick = make(chan struct{}, 1)
		ctx, cancel := context.WithCancel(context.Background())
		s.bgCancel = cancel
		go s.writer()
		s.bgWG.Add(2)
		go s.flushLoop(ctx)
		go s.evictLoop(ctx)
		if opts.ExpireInterval > 0 {
			s.bgWG.Add(1)
			go s.expireLoop(ctx)
		}
		if opts.MaxSize > 0 && s.cnt.Bytes > opts.MaxSize {
			s.kickEvict()
		}
	}
	return s, nil
}

func openBolt(path string, opts Options) (db *bolt.DB, err error) {
	// bbolt panics on some damaged files while opening; keep the file so
	// that its descriptor (and lock) can be released after recovering.
	var file *os.File
	defer func() {
		if p := recover(); p != nil {
			if file != nil {
				releaseFile(file)
			}
			db, err = nil, fmt.Errorf("%w: bbolt: %v", ErrCorrupt, p)
		}
	}()
	mmap := 0
	if !opts.ReadOnly && strconv.IntSize == 64 {
		// Map 1 GiB of address space up front: bbolt re-maps when the file
		// outgrows its mapping, and a re-map waits for every open read
		// transaction and holds new ones back. With room to grow, writes
		// (eviction, purges) never stall readers below 1 GiB of data.
		mmap = 1 << 30
	}
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         opts.Timeout,
		ReadOnly:        opts.ReadOnly,
		NoSync:          opts.NoSync,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: mmap,
		OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, mode)
			file = f
			return f, err
		},
	})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w (waited %v)", ErrLocked, opts.Timeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping),
		// bbolt has no sentinel for a file shorter than two of its pages
		// (garbage of 4-8 KiB, or a cut file): it is not a database.
		strings.HasPrefix(err.Error(), "file size too small"):
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil, err
}

// precheck opens an existing file read-only to refuse a truncated one
// before bbolt opens it read-write (which reads the free list, and grows
// a short file).
func precheck(path string, opts Options) error {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() == 0 {
		return nil // bbolt creates or initializes it
	}
	ro := opts
	ro.ReadOnly = true
	db, err := openBolt(path, ro)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if fi.Size() < tx.Size() {
			return fmt.Errorf("%w: file is %d bytes, its meta page says %d (truncated)", ErrCorrupt, fi.Size(), tx.Size())
		}
		return nil
	})
}

// init checks (or, for a new file, writes) the format version and loads
// the counters.
func (s *Store) init() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: bbolt: %v", ErrCorrupt, p)
		}
	}()
	var upgrade bool // a format-1 file
	check := func(tx *bolt.Tx) error {
		// A file shorter than its meta page says was cut (copied while
		// open, disk full): reading its pages would fault, so refuse it.
		if fi, err := os.Stat(s.path); err == nil && fi.Size() < tx.Size() {
			return fmt.Errorf("%w: file is %d bytes, its meta page says %d (truncated)", ErrCorrupt, fi.Size(), tx.Size())
		}
		mb := tx.Bucket(bucketMeta)
		if mb == nil {
			empty := true
			tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return fmt.Errorf("%w: bbolt file without a firstrender meta bucket", ErrCorrupt)
			}
			return errNewFile
		}
		fv := mb.Get(metaFormat)
		if len(fv) != 4 {
			return fmt.Errorf("%w: missing format version", ErrCorrupt)
		}
		v := binary.BigEndian.Uint32(fv)
		if v > FormatVersion {
			return fmt.Errorf("%w: file format %d, this binary knows up to %d", ErrVersion, v, FormatVersion)
		}
		if v < formatBody {
			upgrade = true
		}
		for _, name := range dataBuckets {
			if string(name) == string(bucketBody) && v < formatBody {
				continue // added by the upgrade below
			}
			if tx.Bucket(name) == nil {
				return fmt.Errorf("%w: missing bucket %q", ErrCorrupt, name)
			}
		}
		c, ok := decodeCounters(mb.Get(metaCounters))
		if !ok {
			return fmt.Errorf("%w: bad counters", ErrCorrupt)
		}
		s.cnt = c
		s.fileSize.Store(tx.Size())
		return nil
	}
	db := s.db.Load()
	err = db.View(check)
	if err == nil && upgrade && !s.opts.ReadOnly {
		err = db.Update(func(tx *bolt.Tx) error {
			if _, err := tx.CreateBucketIfNotExists(bucketBody); err != nil {
				return err
			}
			return tx.Bucket(bucketMeta).Put(metaFormat, binary.BigEndian.AppendUint32(nil, FormatVersion))
		})
		if err != nil {
			return fmt.Errorf("upgrading the file to format %d: %w", FormatVersion, err)
		}
	}
	if errors.Is(err, errNewFile) {
		if s.opts.ReadOnly {
			return fmt.Errorf("%w: empty bbolt file, not a firstrender store", ErrCorrupt)
		}
		err = db.Update(func(tx *bolt.Tx) error {
			if err := s.createBuckets(tx); err != nil {
				return err
			}
			s.fileSize.Store(tx.Size())
			return nil
		})
	}
	if err != nil {
		return err
	}
	s.publish()
	return nil
}

var errNewFile = errors.New("new file")

func (s *Store) publish() {
	s.records.Store(s.cnt.Records)
	s.bytes.Store(s.cnt.Bytes)
	s.evictions.Store(s.cnt.Evictions)
	s.expired.Store(s.cnt.Expired)
}

// Path returns the path given to Open.
func (s *Store) Path() string { return s.path }

// Stats returns the store's counters. It is O(1) and never blocks on
// writes.
func (s *Store) Stats() Stats {
	return Stats{
		Records:       s.records.Load(),
		Bytes:         s.bytes.Load(),
		FileSize:      s.fileSize.Load(),
		Evictions:     s.evictions.Load(),
		Expired:       s.expired.Load(),
		Corrupt:       s.corrupt.Load(),
		MaxSize:       s.opts.MaxSize,
		Commits:       s.commits.Load(),
		Writes:        s.writes.Load(),
		PendingAccess: int64(s.access.pending()),
	}
}

// Generation returns a number that changes after every committed change to
// records: Put, Delete, DeleteKey, DeletePrefix, DeleteTag, DeleteAll,
// Annotate, RemoveExpired, and the background eviction and expiry. Reads
// (Get, Scan, Variants, Stats) and the background writing of access times
// do not change it. It is 1 when Open returns and only grows (it is not
// persisted: compare values from the same *Store only); an operation that
// changes nothing (Delete of a missing record) may or may not advance it.
//
// It is advanced after the change is visible to readers, so a caller may
// validate data it read from the store: if Generation returned g before the
// read and returns g again later, no change was committed in between that
// the read could have missed. A change committed just before the read may
// still advance it afterwards (a harmless false alarm).
//
// Generation is one atomic load: it takes no lock and never blocks, and it
// is safe for concurrent use.
func (s *Store) Generation() uint64 { return s.generation.Load() }

// Close stops the background work, writes pending access times, waits for
// queued writes to commit, and closes the file. Calls after the first
// return ErrClosed.
func (s *Store) Close() error {
	s.closeMu.RLock()
	closed := s.closed
	s.closeMu.RUnlock()
	if closed {
		return ErrClosed
	}
	if s.ops != nil {
		s.bgCancel()
		s.bgWG.Wait()
		_ = s.flushAccess(context.Background())
	}
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return ErrClosed
	}
	s.closed = true
	if s.ops != nil {
		close(s.ops)
	}
	s.closeMu.Unlock()
	if s.ops != nil {
		<-s.writerDone
	}
	s.oldWG.Wait()
	if err := s.db.Load().Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return nil
}

// view runs fn in a read transaction, translating a closed database and
// bbolt's panics on damaged pages into store errors. A panic also reports
// the damage to the writer (Options.SetAsideCorrupt); a read that began
// just as a swap closed the old file runs again on the new one.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	for {
		s.closeMu.RLock()
		closed := s.closed
		s.closeMu.RUnlock()
		if closed {
			return ErrClosed
		}
		db := s.db.Load()
		err := s.viewOn(db, fn)
		if errors.Is(err, berrors.ErrDatabaseNotOpen) {
			if s.db.Load() != db {
				continue // set aside meanwhile: read the fresh file
			}
			return ErrClosed
		}
		return err
	}
}

func (s *Store) viewOn(db *bolt.DB, fn func(tx *bolt.Tx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: %s: %w: bbolt: %v", s.path, ErrCorrupt, p)
			s.reportDamage(db, err)
		}
	}()
	return db.View(fn)
}
