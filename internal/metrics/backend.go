package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward/keyward/internal/cache"
	"github.com/keyward/keyward/internal/kms"
)

// Backend operation label values.
const (
	OpCreate   = "create"
	OpDescribe = "describe"
	OpList     = "list"
	OpUpdate   = "update"
	OpDestroy  = "destroy"
	OpWrap     = "wrap"
	OpUnwrap   = "unwrap"
	OpRotate   = "rotate"
	OpHealth   = "health"
	// OpAlias counts alias changes (create, update, delete); resolving and
	// listing aliases have ops of their own.
	OpAlias        = "alias"
	OpResolveAlias = "resolve_alias"
	OpListAliases  = "list_aliases"
)

var ops = [...]string{OpCreate, OpDescribe, OpList, OpUpdate, OpDestroy, OpWrap, OpUnwrap, OpRotate, OpHealth, OpAlias, OpResolveAlias, OpListAliases}

const (
	opCreate = iota
	opDescribe
	opList
	opUpdate
	opDestroy
	opWrap
	opUnwrap
	opRotate
	opHealth
	opAlias
	opResolveAlias
	opListAliases
)

// isFailure tells a backend failure from an answer. Not found, exists,
// invalid state or ciphertext, invalid request, conflict and not
// implemented are the backend doing its job, and a cancelled context is
// the caller leaving; counting them would make the error rate follow
// client behaviour instead of backend health. Everything else (unavailable,
// deadline exceeded, corrupt records, unexpected errors) is a failure.
func isFailure(err error) bool {
	if err == nil {
		return false
	}
	for _, answer := range []error{
		kms.ErrNotFound, kms.ErrExists, kms.ErrInvalidKeyState, kms.ErrInvalidCiphertext,
		kms.ErrInvalidRequest, kms.ErrConflict, kms.ErrNotImplemented, context.Canceled,
	} {
		if errors.Is(err, answer) {
			return false
		}
	}
	return true
}

// InstrumentEngine wraps e so every call is counted and timed under
// backend=backendType (the configured backend type: "local", "vault"...).
// ClearCache, CacheStats and Close are forwarded uncounted: they are local
// housekeeping, not backend calls. Errors returned by the caller's own
// callbacks (Update's change, Destroy and Rotate preconditions) are not
// counted as backend errors. With a nil m, e is returned as is.
func InstrumentEngine(e kms.Engine, backendType string, m *Metrics) kms.Engine {
	if m == nil || e == nil {
		return e
	}
	w := &instrumented{e: e, m: m, backend: backendType}
	for i, op := range ops {
		// Resolve the label children once: a backend call then costs two
		// atomic adds and a histogram observation, no label hashing.
		w.calls[i] = m.backendCalls.WithLabelValues(backendType, op)
		w.errs[i] = m.backendErrors.WithLabelValues(backendType, op)
		w.dur[i] = m.backendDur.WithLabelValues(backendType, op)
	}
	return w
}

// instrumented is the metrics wrapper of an Engine.
type instrumented struct {
	e       kms.Engine
	m       *Metrics
	backend string
	calls   [len(ops)]prometheus.Counter
	errs    [len(ops)]prometheus.Counter
	dur     [len(ops)]prometheus.Observer
}

var _ kms.Engine = (*instrumented)(nil)

// observe records a call that started at start. own is the error the
// caller's callback returned, if any: the backend passing it back is not a
// backend failure.
func (w *instrumented) observe(op int, start time.Time, err, own error) {
	w.calls[op].Inc()
	if isFailure(err) && (own == nil || !errors.Is(err, own)) {
		w.errs[op].Inc()
	}
	w.dur[op].Observe(time.Since(start).Seconds())
}

func (w *instrumented) Create(ctx context.Context, meta kms.Metadata) (kms.Metadata, error) {
	start := time.Now()
	out, err := w.e.Create(ctx, meta)
	w.observe(opCreate, start, err, nil)
	return out, err
}

func (w *instrumented) Describe(ctx context.Context, id string) (kms.Metadata, error) {
	start := time.Now()
	out, err := w.e.Describe(ctx, id)
	w.observe(opDescribe, start, err, nil)
	return out, err
}

func (w *instrumented) List(ctx context.Context, after string, limit int) (kms.ListPage, error) {
	start := time.Now()
	out, err := w.e.List(ctx, after, limit)
	w.observe(opList, start, err, nil)
	return out, err
}

func (w *instrumented) ListByState(ctx context.Context, after string, limit int, state kms.State) (kms.ListPage, error) {
	start := time.Now()
	out, err := w.e.ListByState(ctx, after, limit, state)
	w.observe(opList, start, err, nil)
	return out, err
}

func (w *instrumented) Update(ctx context.Context, id string, change func(*kms.Metadata) error) (kms.Metadata, error) {
	var own error
	start := time.Now()
	out, err := w.e.Update(ctx, id, func(m *kms.Metadata) error {
		own = change(m)
		return own
	})
	w.observe(opUpdate, start, err, own)
	return out, err
}

func (w *instrumented) Destroy(ctx context.Context, id string, pre func(kms.Metadata) error) error {
	var own error
	if pre != nil {
		inner := pre
		pre = func(m kms.Metadata) error {
			own = inner(m)
			return own
		}
	}
	start := time.Now()
	err := w.e.Destroy(ctx, id, pre)
	w.observe(opDestroy, start, err, own)
	return err
}

func (w *instrumented) Rotate(ctx context.Context, id string, pre func(kms.Metadata) error) (kms.Metadata, error) {
	var own error
	if pre != nil {
		inner := pre
		pre = func(m kms.Metadata) error {
			own = inner(m)
			return own
		}
	}
	start := time.Now()
	out, err := w.e.Rotate(ctx, id, pre)
	w.observe(opRotate, start, err, own)
	return out, err
}

func (w *instrumented) Wrap(ctx context.Context, id string, version uint32, plaintext, aad []byte) ([]byte, error) {
	start := time.Now()
	out, err := w.e.Wrap(ctx, id, version, plaintext, aad)
	w.observe(opWrap, start, err, nil)
	return out, err
}

func (w *instrumented) Unwrap(ctx context.Context, id string, version uint32, ciphertext, aad []byte) ([]byte, error) {
	start := time.Now()
	out, err := w.e.Unwrap(ctx, id, version, ciphertext, aad)
	w.observe(opUnwrap, start, err, nil)
	return out, err
}

func (w *instrumented) Health(ctx context.Context) error {
	start := time.Now()
	err := w.e.Health(ctx)
	w.observe(opHealth, start, err, nil)
	return err
}

func (w *instrumented) CreateAlias(ctx context.Context, a kms.Alias, check func(kms.Metadata) error) error {
	var own error
	start := time.Now()
	err := w.e.CreateAlias(ctx, a, func(m kms.Metadata) error { own = check(m); return own })
	w.observe(opAlias, start, err, own)
	return err
}

func (w *instrumented) UpdateAlias(ctx context.Context, name, keyID string, now time.Time, check func(kms.Metadata) error) (kms.Alias, string, error) {
	var own error
	start := time.Now()
	a, old, err := w.e.UpdateAlias(ctx, name, keyID, now, func(m kms.Metadata) error { own = check(m); return own })
	w.observe(opAlias, start, err, own)
	return a, old, err
}

func (w *instrumented) DeleteAlias(ctx context.Context, name string) (kms.Alias, error) {
	start := time.Now()
	a, err := w.e.DeleteAlias(ctx, name)
	w.observe(opAlias, start, err, nil)
	return a, err
}

func (w *instrumented) ResolveAlias(ctx context.Context, name string) (kms.Alias, error) {
	start := time.Now()
	a, err := w.e.ResolveAlias(ctx, name)
	w.observe(opResolveAlias, start, err, nil)
	return a, err
}

func (w *instrumented) ListAliases(ctx context.Context, after string, limit int) (kms.AliasPage, error) {
	start := time.Now()
	p, err := w.e.ListAliases(ctx, after, limit)
	w.observe(opListAliases, start, err, nil)
	return p, err
}

func (w *instrumented) ClearCache() { w.e.ClearCache() }

func (w *instrumented) CacheStats() cache.Stats { return w.e.CacheStats() }

func (w *instrumented) Close() error { return w.e.Close() }
