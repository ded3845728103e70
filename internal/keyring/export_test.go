package keyring

// CachedMaterialForTest returns the cached material slice itself (not a
// copy), so a test can observe that eviction wipes it.
func CachedMaterialForTest(k *Keyring, id string, ver uint32) []byte {
	o, ok := k.cache.Get(id)
	if !ok {
		return nil
	}
	if v := o.versions[ver]; v != nil {
		return v.material
	}
	return nil
}
