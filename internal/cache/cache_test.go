package cache

import (
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func TestCacheLRUAndWipe(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var wiped []string
	c := New[string, []byte](2, time.Minute, clk.Now, func(b []byte) {
		wiped = append(wiped, string(b))
		clear(b)
	})
	a, b, d := []byte("a"), []byte("b"), []byte("d")
	c.Put("a", a)
	c.Put("b", b)
	if _, ok := c.Get("a"); !ok { // a becomes most recent
		t.Fatal("a missing")
	}
	c.Put("d", d) // evicts b
	if _, ok := c.Get("b"); ok {
		t.Fatal("b should be evicted")
	}
	if len(wiped) != 1 || wiped[0] != "b" || b[0] != 0 {
		t.Fatalf("wiped=%q b=%v", wiped, b)
	}
	clk.Advance(time.Minute)
	if _, ok := c.Get("a"); ok {
		t.Fatal("a should have expired")
	}
	if a[0] != 0 {
		t.Fatal("expired entry not wiped")
	}
	c.Clear()
	if d[0] != 0 || c.Stats().Entries != 0 {
		t.Fatal("clear did not wipe")
	}
	st := c.Stats()
	if st.Hits != 1 || st.Misses != 2 || st.Evictions != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCacheReplaceAndDelete(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	n := 0
	c := New[int, int](10, time.Hour, clk.Now, func(int) { n++ })
	c.Put(1, 1)
	c.Put(1, 2)
	if v, _ := c.Get(1); v != 2 || n != 1 {
		t.Fatalf("v=%d evicted=%d", v, n)
	}
	c.Delete(1)
	c.Delete(1)
	if _, ok := c.Get(1); ok || n != 2 {
		t.Fatalf("delete: evicted=%d", n)
	}
}

func TestCacheDisabled(t *testing.T) {
	n := 0
	c := New[int, int](0, time.Hour, time.Now, func(int) { n++ })
	c.Put(1, 1)
	if _, ok := c.Get(1); ok || n != 1 {
		t.Fatal("disabled cache must not keep values and must evict them at once")
	}
}

func TestCacheConcurrent(t *testing.T) {
	c := New[int, int](8, time.Hour, time.Now, nil)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				c.Put(i%16, i)
				c.Get((i + g) % 16)
				if i%100 == 0 {
					c.Clear()
				}
			}
		}(g)
	}
	wg.Wait()
	if c.Stats().Entries > 8 {
		t.Fatal("bound exceeded")
	}
}
