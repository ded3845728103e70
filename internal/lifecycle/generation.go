package lifecycle

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/metrics"
)

// generation is one running service. refs counts the requests using it, so
// that a generation replaced by reconfigure or stop is closed (and its
// cached material wiped) only after the last of them finishes.
type generation struct {
	svc *kms.Service
	// collector is the backend's own metrics (nil: none).
	collector prometheus.Collector
	refs      atomic.Int64
	retired   atomic.Bool
	once      sync.Once

	stopSweeper context.CancelFunc
	sweeperDone chan struct{}

	// releaseFunc is g.release bound once, so that Acquire, on every
	// request, does not allocate a new method value.
	releaseFunc func()
}

func (g *generation) release() {
	if g.refs.Add(-1) == 0 && g.retired.Load() {
		g.close()
	}
}

// retire stops the sweeper and closes the generation once it is unused.
func (g *generation) retire() {
	g.retired.Store(true)
	if g.stopSweeper != nil {
		g.stopSweeper()
		<-g.sweeperDone
	}
	if g.refs.Load() == 0 {
		g.close()
	}
}

func (g *generation) close() {
	g.once.Do(func() { g.svc.Engine().Close() })
}

// startSweeper runs the background key maintenance every interval until the
// generation is retired: destroy keys whose deletion window has passed, and
// rotate keys whose automatic rotation is due.
func (g *generation) startSweeper(interval time.Duration, log *slog.Logger, m *metrics.Metrics) {
	ctx, cancel := context.WithCancel(context.Background())
	g.stopSweeper, g.sweeperDone = cancel, make(chan struct{})
	go func() {
		defer close(g.sweeperDone)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			destroyed, err := g.svc.Sweep(ctx)
			if err != nil && ctx.Err() == nil {
				log.Error("deletion sweep failed", "error", err.Error(), "detail", kms.PrivateDetail(err), "destroyed", destroyed)
				m.SweeperError()
			}
			rotated, err := g.svc.RotateDue(ctx)
			if err != nil && ctx.Err() == nil {
				log.Error("automatic rotation failed", "error", err.Error(), "rotated", rotated)
				m.SweeperError()
			}
			m.SweeperRun(destroyed, rotated)
		}
	}()
}
