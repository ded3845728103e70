// Package cache is a small bounded LRU cache with a time-to-live, made for
// key material: every entry that leaves the cache (evicted for size, expired,
// invalidated, cleared) is handed to an OnEvict callback exactly once, so the
// owner can wipe it.
package cache

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
)

// Stats are counters since the cache was made.
type Stats struct {
	Hits, Misses, Evictions uint64
	Entries                 int
}

// Cache maps K to V. A zero MaxEntries or TTL disables caching: Get always
// misses and Put only calls OnEvict. Safe for concurrent use.
type Cache[K comparable, V any] struct {
	maxEntries int
	ttl        time.Duration
	now        func() time.Time
	onEvict    func(V)

	mu    sync.Mutex
	order *list.List // front = most recently used
	items map[K]*list.Element

	hits, misses, evictions atomic.Uint64
}

type entry[K comparable, V any] struct {
	key     K
	value   V
	expires time.Time
}

// New makes a cache. now is the injected clock; onEvict may be nil.
func New[K comparable, V any](maxEntries int, ttl time.Duration, now func() time.Time, onEvict func(V)) *Cache[K, V] {
	return &Cache[K, V]{
		maxEntries: maxEntries,
		ttl:        ttl,
		now:        now,
		onEvict:    onEvict,
		order:      list.New(),
		items:      make(map[K]*list.Element),
	}
}

// Enabled reports whether the cache keeps anything.
func (c *Cache[K, V]) Enabled() bool { return c.maxEntries > 0 && c.ttl > 0 }

// Get returns the live value for k.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	var zero V
	if !c.Enabled() {
		c.misses.Add(1)
		return zero, false
	}
	c.mu.Lock()
	el, ok := c.items[k]
	if !ok {
		c.mu.Unlock()
		c.misses.Add(1)
		return zero, false
	}
	e := el.Value.(*entry[K, V])
	if !c.now().Before(e.expires) {
		c.removeLocked(el)
		c.mu.Unlock()
		c.misses.Add(1)
		c.evict(e.value)
		return zero, false
	}
	c.order.MoveToFront(el)
	v := e.value
	c.mu.Unlock()
	c.hits.Add(1)
	return v, true
}

// Put stores v under k, replacing (and evicting) any previous value and
// evicting the least recently used entry when full.
func (c *Cache[K, V]) Put(k K, v V) {
	if !c.Enabled() {
		c.evict(v)
		return
	}
	var gone []V
	c.mu.Lock()
	if el, ok := c.items[k]; ok {
		gone = append(gone, el.Value.(*entry[K, V]).value)
		c.removeLocked(el)
	}
	for c.order.Len() >= c.maxEntries {
		el := c.order.Back()
		gone = append(gone, el.Value.(*entry[K, V]).value)
		c.removeLocked(el)
	}
	c.items[k] = c.order.PushFront(&entry[K, V]{key: k, value: v, expires: c.now().Add(c.ttl)})
	c.mu.Unlock()
	for _, g := range gone {
		c.evict(g)
	}
}

// Delete removes k.
func (c *Cache[K, V]) Delete(k K) {
	c.mu.Lock()
	el, ok := c.items[k]
	if ok {
		c.removeLocked(el)
	}
	c.mu.Unlock()
	if ok {
		c.evict(el.Value.(*entry[K, V]).value)
	}
}

// Clear removes every entry.
func (c *Cache[K, V]) Clear() {
	c.mu.Lock()
	var gone []V
	for el := c.order.Front(); el != nil; el = el.Next() {
		gone = append(gone, el.Value.(*entry[K, V]).value)
	}
	c.order.Init()
	clear(c.items)
	c.mu.Unlock()
	for _, g := range gone {
		c.evict(g)
	}
}

// Stats returns the counters.
func (c *Cache[K, V]) Stats() Stats {
	c.mu.Lock()
	n := c.order.Len()
	c.mu.Unlock()
	return Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(), Entries: n}
}

func (c *Cache[K, V]) removeLocked(el *list.Element) {
	c.order.Remove(el)
	delete(c.items, el.Value.(*entry[K, V]).key)
}

func (c *Cache[K, V]) evict(v V) {
	c.evictions.Add(1)
	if c.onEvict != nil {
		c.onEvict(v)
	}
}
