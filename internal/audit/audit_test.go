package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// syncBuffer is a bytes.Buffer safe to read while the writer goroutine
// writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func lines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ln := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if ln == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("line is not JSON: %v\n%s", err, ln)
		}
		out = append(out, m)
	}
	return out
}

func sampleEvent(i int) Event {
	return Event{
		Time:       time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.FixedZone("X", 3600)),
		RequestID:  fmt.Sprintf("req-%04d", i),
		AccessKey:  "AKIDEXAMPLE",
		SourceAddr: "192.0.2.1:51234",
		Method:     "POST",
		Route:      "/rustfs/admin/v3/kms/keys/{key_id}",
		Action:     "kms:DescribeKey",
		KeyID:      "my-key",
		Status:     404,
		Code:       "NotFound",
		Latency:    1500 * time.Microsecond,
	}
}

var timeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

func TestLineHasEveryField(t *testing.T) {
	var buf syncBuffer
	l := New(&buf, 16, nil)
	e := sampleEvent(1)
	e.KeyID = "k\"\\\n\x01é\u2028\xff"
	l.Record(e)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := lines(t, buf.String())
	if len(got) != 1 {
		t.Fatalf("want 1 line, got %d: %q", len(got), buf.String())
	}
	m := got[0]
	want := map[string]any{
		"time":       "2026-03-04T04:06:07.123456Z",
		"request_id": "req-0001",
		"access_key": "AKIDEXAMPLE",
		"source":     "192.0.2.1:51234",
		"method":     "POST",
		"route":      "/rustfs/admin/v3/kms/keys/{key_id}",
		"action":     "kms:DescribeKey",
		"key_id":     "k\"\\\n\x01é\u2028\ufffd",
		"status":     float64(404),
		"code":       "NotFound",
		"latency_ms": 1.5,
	}
	if len(m) != len(want) {
		t.Errorf("fields: got %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
}

func TestZeroTimeIsNowAndSuccessHasEmptyCode(t *testing.T) {
	var buf syncBuffer
	l := New(&buf, 16, nil)
	before := time.Now().UTC().Truncate(time.Microsecond)
	l.Record(Event{RequestID: "r", Status: 200})
	l.Close()
	m := lines(t, buf.String())[0]
	ts, _ := m["time"].(string)
	if !timeRE.MatchString(ts) {
		t.Fatalf("time %q is not RFC 3339 UTC with microseconds", ts)
	}
	tm, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || tm.Before(before) || tm.After(time.Now()) {
		t.Errorf("time %v not now (%v)", tm, err)
	}
	if m["code"] != "" || m["key_id"] != "" || m["status"] != float64(200) {
		t.Errorf("got %v", m)
	}
}

func TestLongFieldsAreCut(t *testing.T) {
	var buf syncBuffer
	l := New(&buf, 16, nil)
	l.Record(Event{KeyID: strings.Repeat("é", maxField)})
	l.Close()
	k := lines(t, buf.String())[0]["key_id"].(string)
	if len(k) > maxField+3 || !strings.HasSuffix(k, "...") || !utf8.ValidString(k) {
		t.Errorf("key_id of %d bytes: %q...", len(k), k[:20])
	}
}

func TestConcurrentRecordsAllWritten(t *testing.T) {
	var buf syncBuffer
	l := New(&buf, 1000, nil)
	const n, workers = 1000, 16
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				l.Record(sampleEvent(i))
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := lines(t, buf.String())
	if len(got) != n || l.Dropped() != 0 {
		t.Fatalf("got %d lines, %d dropped; want %d, 0", len(got), l.Dropped(), n)
	}
	seen := map[any]bool{}
	for _, m := range got {
		seen[m["request_id"]] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct request ids, want %d", len(seen), n)
	}
}

// gateWriter blocks every Write until the gate is opened, and says when a
// write has started.
type gateWriter struct {
	entered chan struct{}
	gate    chan struct{}
	buf     syncBuffer
}

func newGateWriter() *gateWriter {
	return &gateWriter{entered: make(chan struct{}, 100), gate: make(chan struct{})}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.gate
	return g.buf.Write(p)
}

func TestFullQueueDropsAreCountedAndReported(t *testing.T) {
	gw := newGateWriter()
	var logBuf syncBuffer
	l := New(gw, 2, slog.New(slog.NewTextHandler(&logBuf, nil)))
	l.Record(sampleEvent(0))
	<-gw.entered // the writer holds event 0 and is stuck writing it

	// A Record that waited for room would wait forever here (the writer is
	// stuck until the gate opens), so a generous bound tells the cases apart
	// without timing anything.
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		for i := 1; i <= 10; i++ {
			l.Record(sampleEvent(i))
		}
	}()
	select {
	case <-recorded:
	case <-time.After(10 * time.Second):
		t.Fatal("Record blocked on a full queue")
	}
	if got := l.Dropped(); got != 8 {
		t.Fatalf("Dropped = %d, want 8 (queue of 2)", got)
	}
	close(gw.gate)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := lines(t, gw.buf.String())
	var events, reported int
	for _, m := range got {
		if m["type"] == "audit_dropped" {
			reported += int(m["dropped"].(float64))
			if !timeRE.MatchString(m["time"].(string)) || m["dropped_total"] != float64(8) {
				t.Errorf("drop line %v", m)
			}
			continue
		}
		events++
	}
	if events != 3 || reported != 8 {
		t.Errorf("got %d events and %d reported drops, want 3 and 8:\n%s", events, reported, gw.buf.String())
	}
	if !strings.Contains(logBuf.String(), "events dropped") {
		t.Errorf("no warning logged: %q", logBuf.String())
	}
}

func TestCloseDrainsQueue(t *testing.T) {
	var buf syncBuffer
	slow := writerFunc(func(p []byte) (int, error) {
		time.Sleep(time.Millisecond)
		return buf.Write(p)
	})
	l := New(slow, 500, nil)
	for i := range 300 {
		l.Record(sampleEvent(i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(lines(t, buf.String())); n != 300 {
		t.Errorf("%d lines after Close, want 300", n)
	}
	l.Record(sampleEvent(1)) // after Close: counted, no panic
	if l.Dropped() != 1 {
		t.Errorf("Dropped after Close = %d, want 1", l.Dropped())
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestEveryEventIsWrittenOrCounted races Records (into a tiny queue)
// against Close: each event must end up either in the log or in Dropped.
func TestEveryEventIsWrittenOrCounted(t *testing.T) {
	var buf syncBuffer
	l := New(&buf, 4, nil)
	var wg sync.WaitGroup
	const workers, each = 8, 500
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				l.Record(sampleEvent(w*each + i))
			}
		})
	}
	time.Sleep(time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	written := 0
	for _, m := range lines(t, buf.String()) {
		if m["type"] == nil {
			written++
		}
	}
	if uint64(written)+l.Dropped() != workers*each {
		t.Errorf("%d written + %d dropped != %d recorded", written, l.Dropped(), workers*each)
	}
}

func TestCloseIsBoundedWhenOutputIsStuck(t *testing.T) {
	gw := newGateWriter()
	defer close(gw.gate)
	l := New(gw, 10, nil)
	l.closeTimeout = 50 * time.Millisecond
	l.Record(sampleEvent(0))
	<-gw.entered
	l.Record(sampleEvent(1))
	start := time.Now()
	err := l.Close()
	if err == nil || time.Since(start) > time.Second {
		t.Errorf("Close = %v after %v; want a timeout error", err, time.Since(start))
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestWriteErrorsAreCountedAndReported(t *testing.T) {
	var buf syncBuffer
	var mu sync.Mutex
	fail := true
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return 0, errors.New("disk full")
		}
		return buf.Write(p)
	})
	l := New(w, 10, nil)
	l.Record(sampleEvent(0))
	for l.Dropped() == 0 {
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	l.Record(sampleEvent(1))
	l.Close()
	got := lines(t, buf.String())
	if len(got) != 2 || got[0]["type"] != "audit_dropped" || got[0]["dropped"] != float64(1) || got[1]["request_id"] != "req-0001" {
		t.Errorf("got %s", buf.String())
	}
}

func TestOpenFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Record(sampleEvent(1))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if len(lines(t, string(data))) != 1 {
		t.Errorf("file holds %q", data)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing", "audit.log"), 0, nil); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
}

func TestReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l, err := Open(path, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Record(sampleEvent(1))
	waitFor(t, func() bool { data, _ := os.ReadFile(path); return len(data) > 0 })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Record(sampleEvent(2))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{path + ".1": "req-0001", path: "req-0002"} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		got := lines(t, string(data))
		if len(got) != 1 || got[0]["request_id"] != want {
			t.Errorf("%s holds %q, want only %s", filepath.Base(name), data, want)
		}
	}
	if err := l.Reopen(); err == nil {
		t.Error("Reopen after Close succeeded")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestNilLogger(t *testing.T) {
	var l *Logger
	l.Record(sampleEvent(1))
	if l.Dropped() != 0 || l.Reopen() != nil || l.Close() != nil {
		t.Error("nil Logger did something")
	}
}

func TestStdoutReopenIsNoop(t *testing.T) {
	l, err := Open("-", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Error(err)
	}
	l.Close() // must not close os.Stdout
	if _, err := os.Stdout.Stat(); err != nil {
		t.Errorf("stdout closed: %v", err)
	}
}

func BenchmarkRecord(b *testing.B) {
	l := New(io.Discard, DefaultBufferSize, nil)
	e := sampleEvent(1)
	b.ReportAllocs()
	for b.Loop() {
		l.Record(e)
	}
	b.StopTimer()
	l.Close()
	b.ReportMetric(float64(l.Dropped())/float64(b.N), "drops/op")
}

func BenchmarkRecordParallel(b *testing.B) {
	l := New(io.Discard, DefaultBufferSize, nil)
	e := sampleEvent(1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Record(e)
		}
	})
	b.StopTimer()
	l.Close()
	b.ReportMetric(float64(l.Dropped())/float64(b.N), "drops/op")
}

// BenchmarkRecordAccepted times Record on the path where the queue has
// room (the benchmarks above mostly measure the drop path, because a tight
// loop outruns any writer): the timer stops while the writer drains.
func BenchmarkRecordAccepted(b *testing.B) {
	l := New(io.Discard, DefaultBufferSize, nil)
	e := sampleEvent(1)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if len(l.queue) == cap(l.queue) {
			b.StopTimer()
			for len(l.queue) > 0 {
				runtime.Gosched()
			}
			b.StartTimer()
		}
		l.Record(e)
	}
	b.StopTimer()
	l.Close()
	if l.Dropped() != 0 {
		b.Fatalf("%d dropped", l.Dropped())
	}
}

// BenchmarkSustained is the writer's throughput to io.Discard: the rate
// above which events are dropped.
func BenchmarkSustained(b *testing.B) {
	l := New(io.Discard, DefaultBufferSize, nil)
	e := sampleEvent(1)
	for b.Loop() {
		for len(l.queue) == cap(l.queue) {
			runtime.Gosched()
		}
		l.Record(e)
	}
	l.Close()
	if l.Dropped() != 0 {
		b.Fatalf("%d dropped", l.Dropped())
	}
}

// BenchmarkEncode is the writer goroutine's cost per event.
func BenchmarkEncode(b *testing.B) {
	e := sampleEvent(1)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendEvent(buf[:0], &e)
	}
}

// A KES call's line names its identity after the (empty) access key; other
// lines have no identity field.
func TestIdentityField(t *testing.T) {
	var buf syncBuffer
	l := New(&buf, 16, nil)
	e := sampleEvent(1)
	e.AccessKey, e.Identity = "", "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6"
	l.Record(e)
	l.Record(sampleEvent(2))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := lines(t, buf.String())
	if len(got) != 2 || got[0]["identity"] != e.Identity || got[0]["access_key"] != "" {
		t.Fatalf("KES line: %v", got)
	}
	if _, ok := got[1]["identity"]; ok || !strings.Contains(buf.String(), `"access_key":"","identity":"ea98`) {
		t.Errorf("lines: %s", buf.String())
	}
}
