// Package audit writes the audit log: one JSON line per admin or data-plane
// call (docs/operations.md, "Audit log") saying who did what to which key,
// when, and how it ended.
//
// Two rules shape it. First, the log can never carry key material or
// secrets: an Event is a fixed struct of identifiers and outcomes, with no
// field (no map, no []byte, no "details" string) that a careless caller
// could fill with a plaintext or a token. Second, auditing must not stall
// the request path: Record only copies the Event into a bounded queue, and
// one writer goroutine encodes and writes. When the queue is full the event
// is dropped, but never silently: the loss is counted (Dropped), written
// into the log itself as an "audit_dropped" line as soon as the writer
// catches up, and logged as a warning.
//
// Wiring: Open at startup (path "-" is stdout), Record once per finished
// request, Reopen on SIGHUP after logrotate has moved the file, Close after
// the HTTP server has drained. A nil *Logger is valid and does nothing, so
// an unconfigured audit log needs no branches at the call sites.
package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Event is one audited call. Every field is an identifier or an outcome;
// there is deliberately no field that could hold key material, a request
// body, or a free-form message.
type Event struct {
	// Time is when the call finished; zero means "now" (set by Record).
	Time time.Time
	// RequestID is the id also sent as X-Request-Id.
	RequestID string
	// AccessKey is the authenticated (or, on an authentication failure,
	// the claimed) access key id. Never the secret key.
	AccessKey string
	// Identity is the KES identity (the hex SHA-256 of the client
	// certificate's public key) of a call through the KES API, "" for
	// others; written only when set.
	Identity string
	// SourceAddr is the peer address (http.Request.RemoteAddr).
	SourceAddr string
	Method     string
	// Route is the route pattern, e.g. "/rustfs/admin/v3/kms/keys/{key_id}",
	// or "unmatched"; the concrete key id goes in KeyID.
	Route string
	// Action is the kms:* action the route needs.
	Action string
	// KeyID is the key the call was about, "" when none.
	KeyID  string
	Status int
	// Code is the error code of a failed call ("" on success).
	Code    string
	Latency time.Duration
	// Archive holds the counts of a backup or restore; nil for every
	// other call. Numbers only, like the rest of the event.
	Archive *ArchiveCounts
}

// ArchiveCounts are the counts a backup or restore reports: the entries
// of the archive, and for a restore what became of its keys and aliases.
type ArchiveCounts struct {
	Keys, KeysAbsent, Aliases int
	// Restore only.
	DryRun                              bool
	Restored, Existing, Skipped, Failed int
	AliasesRestored, AliasesExisting    int
	AliasesSkipped                      int
}

// Defaults.
const (
	// DefaultBufferSize is the queue length used when Open is given <= 0:
	// a few seconds of a busy server's calls while the disk stalls.
	DefaultBufferSize = 8192
	// flushSize bounds one write: a batch is written when the queue is
	// empty or when it reaches this size.
	flushSize = 64 << 10
	// reportEvery rate-limits audit_dropped lines (and their warnings)
	// while the queue stays full, so the reports do not add to the load
	// that caused the drops; an emptied queue reports at once.
	reportEvery = time.Second
	// closeTimeout bounds Close when the output is stuck.
	closeTimeout = 5 * time.Second
)

// Logger writes audit events. Methods are safe for concurrent use, and on
// a nil *Logger they do nothing.
type Logger struct {
	queue   chan Event
	dropped atomic.Uint64
	log     *slog.Logger
	path    string // the file to reopen; "" for stdout or a caller's writer

	// sendMu lets Close close the queue with no Record sending into it:
	// Record holds it shared for the length of a non-blocking send.
	sendMu sync.RWMutex
	closed bool

	// outMu guards the output against Reopen swapping it mid-write.
	outMu sync.Mutex
	out   io.Writer
	file  *os.File // out when it is a file this Logger owns

	done         chan struct{}
	closeOnce    sync.Once
	closeErr     error
	closeTimeout time.Duration
	now          func() time.Time

	// Owned by the writer goroutine.
	buf        []byte // the batch being built
	events     int    // event lines in buf
	drops      []dropLine
	reported   uint64 // drops covered by audit_dropped lines written
	pendingRep uint64 // drops covered by lines in buf, not yet written
	lastReport time.Time
	partial    bool // a failed write may have left half a line
	failing    bool // the last write failed (logged once per outage)
}

// dropLine remembers where a drop report ends in the batch, so a failed
// write can tell lost events from lost reports.
type dropLine struct {
	end   int
	total uint64
}

// Open starts a Logger writing to path: "-" is standard output, anything
// else a file opened for appending (created with mode 0600; an existing
// file keeps its mode; the parent directory must exist). bufferSize is the
// queue length (<= 0: DefaultBufferSize). log receives warnings about drops
// and write failures (nil: discarded).
func Open(path string, bufferSize int, log *slog.Logger) (*Logger, error) {
	if path == "-" {
		return newLogger(os.Stdout, nil, "", bufferSize, log), nil
	}
	if path == "" {
		return nil, errors.New("audit: empty log path")
	}
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	return newLogger(f, f, path, bufferSize, log), nil
}

// New starts a Logger writing to w, which it never closes (Reopen is a
// no-op). It exists for tests, including the HTTP layer's, that want to
// read the lines back.
func New(w io.Writer, bufferSize int, log *slog.Logger) *Logger {
	return newLogger(w, nil, "", bufferSize, log)
}

func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: opening the log: %w", err)
	}
	return f, nil
}

func newLogger(w io.Writer, f *os.File, path string, bufferSize int, log *slog.Logger) *Logger {
	if bufferSize <= 0 {
		bufferSize = DefaultBufferSize
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Logger{
		queue:        make(chan Event, bufferSize),
		log:          log,
		path:         path,
		out:          w,
		file:         f,
		done:         make(chan struct{}),
		closeTimeout: closeTimeout,
		now:          time.Now,
		buf:          make([]byte, 0, flushSize+4096),
	}
	go l.run()
	return l
}

// Record queues e and returns at once. If the queue is full (the output is
// slower than the traffic) the event is counted as dropped and reported
// later; after Close, events are counted as dropped too.
func (l *Logger) Record(e Event) {
	if l == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	l.sendMu.RLock()
	if !l.closed {
		select {
		case l.queue <- e:
			l.sendMu.RUnlock()
			return
		default:
		}
	}
	l.sendMu.RUnlock()
	l.dropped.Add(1)
}

// Dropped returns how many events were lost since the Logger was made:
// refused by a full queue, recorded after Close, or lost to a failed write.
func (l *Logger) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// Reopen reopens the log file by name, so that after logrotate has renamed
// it, new lines go to a fresh file; call it on SIGHUP. Lines not yet
// written when Reopen runs go to the new file. For stdout or a writer given
// to New it does nothing. On error the old file stays in use.
func (l *Logger) Reopen() error {
	if l == nil || l.path == "" {
		return nil
	}
	f, err := openFile(l.path)
	if err != nil {
		return err
	}
	l.outMu.Lock()
	if l.file == nil { // closed meanwhile
		l.outMu.Unlock()
		f.Close()
		return errors.New("audit: reopen after close")
	}
	old := l.file
	l.out, l.file = f, f
	l.outMu.Unlock()
	if err := old.Close(); err != nil {
		return fmt.Errorf("audit: closing the rotated log: %w", err)
	}
	return nil
}

// Close stops accepting events, writes every queued one, reports any
// drops, and closes the file. Call it after the HTTP server has shut down,
// so no request is still recording. It waits at most a few seconds for a
// stuck output and then returns an error saying how many events it could
// not write. Later calls return the first result.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.closeOnce.Do(func() {
		l.sendMu.Lock()
		l.closed = true
		close(l.queue)
		l.sendMu.Unlock()
		t := time.NewTimer(l.closeTimeout)
		defer t.Stop()
		select {
		case <-l.done:
		case <-t.C:
			// The writer is blocked in a write; leave it be (and leave the
			// file open under it) rather than hang shutdown.
			l.closeErr = fmt.Errorf("audit: output stuck; %d queued events not written", len(l.queue))
			return
		}
		l.outMu.Lock()
		f := l.file
		l.file = nil
		l.outMu.Unlock()
		if f != nil {
			if err := f.Sync(); err != nil {
				l.closeErr = fmt.Errorf("audit: syncing the log: %w", err)
			}
			if err := f.Close(); err != nil && l.closeErr == nil {
				l.closeErr = fmt.Errorf("audit: closing the log: %w", err)
			}
		}
	})
	return l.closeErr
}

// run is the writer goroutine. It batches the lines of the events already
// queued into one write, and writes whenever the queue runs empty, so a
// quiet server's lines reach the file at once and a busy one's in few
// system calls. A 1 s tick reports drops that happened after the writer
// went idle.
func (l *Logger) run() {
	defer close(l.done)
	tick := time.NewTicker(reportEvery)
	defer tick.Stop()
	for {
		select {
		case e, ok := <-l.queue:
			if !ok {
				l.reportDrops(true)
				l.flush()
				return
			}
			l.reportDrops(false)
			l.buf = appendEvent(l.buf, &e)
			l.events++
			if len(l.queue) == 0 {
				l.reportDrops(true)
				l.flush()
			} else if len(l.buf) >= flushSize {
				l.flush()
			}
		case <-tick.C:
			l.reportDrops(true)
			l.flush()
		}
	}
}

// reportDrops adds an audit_dropped line for drops not yet reported; unless
// force, at most once per reportEvery.
func (l *Logger) reportDrops(force bool) {
	total := l.dropped.Load()
	covered := max(l.reported, l.pendingRep)
	if total == covered {
		return
	}
	now := l.now()
	if !force && now.Sub(l.lastReport) < reportEvery {
		return
	}
	l.buf = appendDropped(l.buf, now, total-covered, total)
	l.drops = append(l.drops, dropLine{end: len(l.buf), total: total})
	l.pendingRep = total
	l.lastReport = now
	if l.failing { // the outage was logged once; do not log per event
		return
	}
	l.log.Warn("audit log: events dropped (queue full or output failing)", "dropped", total-covered, "dropped_total", total)
}

// flush writes the batch. A failed write loses the lines it did not write:
// their events are added to the dropped count, and drop reports among them
// are re-reported later, so the log itself ends up saying what it misses.
func (l *Logger) flush() {
	if len(l.buf) == 0 {
		return
	}
	l.outMu.Lock()
	var n int
	var err error
	if l.out == nil {
		err = errors.New("log closed")
	} else {
		if l.partial {
			// End the half line a failed write left, so it cannot merge
			// with the next line.
			if _, err = l.out.Write([]byte{'\n'}); err == nil {
				l.partial = false
			}
		}
		if err == nil {
			n, err = l.out.Write(l.buf)
		}
	}
	l.outMu.Unlock()
	if err == nil {
		if l.pendingRep > l.reported {
			l.reported = l.pendingRep
		}
		if l.failing {
			l.failing = false
			l.log.Info("audit log: writing again")
		}
	} else {
		l.writeFailed(n, err)
	}
	l.buf, l.events, l.drops = l.buf[:0], 0, l.drops[:0]
}

func (l *Logger) writeFailed(n int, err error) {
	n = max(0, min(n, len(l.buf)))
	if n > 0 && l.buf[n-1] != '\n' {
		l.partial = true
	}
	// Lines ending after n were lost; those that are drop reports are
	// not events.
	lostLines := bytes.Count(l.buf[n:], []byte{'\n'})
	for _, d := range l.drops {
		if d.end > n {
			lostLines--
		} else if d.total > l.reported {
			l.reported = d.total
		}
	}
	l.pendingRep = l.reported
	lost := min(lostLines, l.events)
	l.dropped.Add(uint64(lost))
	if !l.failing {
		l.failing = true
		l.log.Error("audit log: write failed; events lost", "error", err.Error(), "lost", lost)
	}
}
