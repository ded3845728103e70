// Package gctune sets the garbage collector's percentage (GOGC) from the
// live heap, for a server whose live heap ranges from a few megabytes (the
// request path's garbage over almost nothing) to hundreds (the key index
// of 100,000 keys and more).
//
// A fixed GOGC=400 makes the collector run rarely over a small live heap,
// which is what the hot path wants (docs/PERFORMANCE.md), but with a large
// one it lets the heap grow to five times its live size: 45 MB of index
// became 300 MB resident. The tuner keeps the percentage at Max while the
// headroom it gives (live × percent / 100) stays under Headroom, and
// lowers it, down to Min, as the live heap grows: a bounded headroom for
// garbage rather than a multiple of the live heap.
package gctune

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Settings of a Tuner.
type Settings struct {
	// Max and Min bound the percentage; Headroom is the most garbage, in
	// bytes, that Max may let accumulate over the live heap before the
	// percentage is lowered.
	Max, Min int
	Headroom uint64
	// Every is how often the live heap is read.
	Every time.Duration
}

// Defaults: GOGC=400 up to 16 MiB of live heap (64 MiB of headroom), then
// 64 MiB of headroom until GOGC=100.
var Defaults = Settings{Max: 400, Min: 100, Headroom: 64 << 20, Every: time.Second}

// Percent is the percentage for a live heap of live bytes.
func (s Settings) Percent(live uint64) int {
	if live == 0 || live*uint64(s.Max)/100 <= s.Headroom {
		return s.Max
	}
	return max(s.Min, int(s.Headroom*100/live))
}

// Run sets the percentage now and then every s.Every until ctx ends.
func Run(ctx context.Context, s Settings) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current := -1
	apply := func() {
		metrics.Read(sample)
		live := uint64(0)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			live = sample[0].Value.Uint64()
		}
		if p := s.Percent(live); p != current {
			debug.SetGCPercent(p)
			current = p
		}
	}
	apply()
	t := time.NewTicker(s.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			apply()
		}
	}
}
