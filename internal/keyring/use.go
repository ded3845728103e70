package keyring

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyward/keyward/internal/kms"
)

// Using a key version's material (Wrap, Unwrap).

// withVersion runs f with a key version. A cached record's read lock is
// held meanwhile so its material cannot be wiped underneath; a record
// evicted between lookup and lock is looked up again, and after a few such
// races the record is loaded privately.
func (k *Keyring) withVersion(ctx context.Context, id string, ver uint32, f func(*Version) error) error {
	err := k.withCachedVersion(ctx, id, ver, f)
	if errors.Is(err, errNewerVersion) {
		// The cached record predates a rotation the caller already knows
		// of (made on another node, seen first through the index): read
		// the record again.
		k.cache.Delete(id)
		err = k.withCachedVersion(ctx, id, ver, f)
		if errors.Is(err, errNewerVersion) {
			err = fmt.Errorf("%w: the blob names key version %d, which the key does not have", kms.ErrInvalidCiphertext, ver)
		}
	}
	return err
}

// errNewerVersion: the record used is older than the version asked for.
var errNewerVersion = errors.New("keyring: key version newer than the record")

func (k *Keyring) withCachedVersion(ctx context.Context, id string, ver uint32, f func(*Version) error) error {
	if !k.material.InRecord() {
		// Nothing in the record is wiped: use it without holding its lock.
		// A backend call (a Transit round trip) made under the read lock
		// would make an eviction of the record wait for it, and every new
		// caller of the key wait behind that eviction.
		o, _, err := k.load(ctx, id, true)
		if err != nil {
			return err
		}
		return o.use(k.material, ver, f)
	}
	for attempt := 0; ; attempt++ {
		o, owned, err := k.load(ctx, id, attempt < 3)
		if err != nil {
			return err
		}
		if owned {
			err = o.use(k.material, ver, f)
			o.wipe()
			return err
		}
		o.mu.RLock()
		if o.wiped {
			o.mu.RUnlock()
			continue
		}
		err = o.use(k.material, ver, f)
		o.mu.RUnlock()
		return err
	}
}

// use runs f with a version of the record. The caller guarantees the
// material is not wiped meanwhile.
func (o *openRecord) use(m Material, ver uint32, f func(*Version) error) error {
	if err := m.Usable(o.meta.ID, o.state); err != nil {
		return err
	}
	v, ok := o.versions[ver]
	if !ok && ver > o.meta.Version {
		return errNewerVersion
	}
	if !ok {
		return fmt.Errorf("%w: the blob names key version %d, which the key does not have", kms.ErrInvalidCiphertext, ver)
	}
	return f(v)
}
