package gctune

import (
	"context"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, 400}, {1 * mib, 400}, {16 * mib, 400}, {32 * mib, 200}, {45 * mib, 142}, {64 * mib, 100}, {500 * mib, 100},
	} {
		if got := Defaults.Percent(tc.live); got != tc.want {
			t.Errorf("Percent(%d MiB) = %d, want %d", tc.live/mib, got, tc.want)
		}
	}
}

// TestRun sets the percentage of this process from its live heap (small
// in a test: Max) and stops with its context.
func TestRun(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Run(ctx, Settings{Max: 300, Min: 100, Headroom: 1 << 30, Every: time.Millisecond})
		close(done)
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	<-done
	if got := debug.SetGCPercent(100); got != 300 {
		t.Fatalf("GC percent %d, want 300", got)
	}
}
