package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"sync"
)

const (
	hmacBlock = 64 // SHA-256 block size

	// keyCacheSize bounds the signing-key cache. A key is valid for one
	// (access key, secret, day, region, service), so a few entries per active
	// client suffice; the bound only matters under churn (e.g. a caller cycling
	// region names), where evictions just cost a re-derivation.
	keyCacheSize = 1024
)

// deriveSigningKey computes the SigV4 key
//
//	HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request")
//
// This costs four HMACs, which is why its result is cached.
func deriveSigningKey(secret, date, region, service string) [32]byte {
	k := hmacSum([]byte("AWS4"+secret), date)
	k = hmacSum(k, region)
	k = hmacSum(k, service)
	k = hmacSum(k, scopeTerminator)
	return [32]byte(k)
}

func hmacSum(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// hmacSHA256 computes HMAC-SHA256(key, buf[hmacBlock:]) without allocating.
// The first hmacBlock bytes of buf are scratch space: they are overwritten
// with the inner pad so the inner hash is a single sha256.Sum256 over a
// contiguous buffer (crypto/hmac would allocate two hash states per call).
// The key is 32 bytes, shorter than the block, so it is used as is.
func hmacSHA256(key *[32]byte, buf []byte) [32]byte {
	for i := 0; i < hmacBlock; i++ {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		buf[i] = k ^ 0x36
	}
	inner := sha256.Sum256(buf)
	var outer [hmacBlock + sha256.Size]byte
	for i := 0; i < hmacBlock; i++ {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		outer[i] = k ^ 0x5c
	}
	copy(outer[hmacBlock:], inner[:])
	return sha256.Sum256(outer[:])
}

// cacheKey identifies a derived signing key. It includes the secret itself,
// so when a secret is rotated the old entry simply stops matching and can
// never be served for the new secret.
type cacheKey struct {
	accessKey, secret, date, region, service string
}

// keyCache is a small bounded concurrent map of derived signing keys.
type keyCache struct {
	mu  sync.RWMutex
	m   map[cacheKey][32]byte
	max int
}

func (c *keyCache) init(max int) {
	c.m = make(map[cacheKey][32]byte)
	c.max = max
}

// signingKey returns the cached key, deriving and caching it on a miss.
func (c *keyCache) signingKey(accessKey, secret, date, region, service string) [32]byte {
	k := cacheKey{accessKey, secret, date, region, service}
	c.mu.RLock()
	key, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return key
	}
	key = deriveSigningKey(secret, date, region, service)
	// The request-derived strings are substrings of the request's headers;
	// clone them so the cache does not pin request memory.
	k.accessKey, k.date = strings.Clone(accessKey), strings.Clone(date)
	k.region, k.service = strings.Clone(region), strings.Clone(service)
	c.mu.Lock()
	if len(c.m) >= c.max {
		for old := range c.m { // map iteration order is random: random eviction
			delete(c.m, old)
			break
		}
	}
	c.m[k] = key
	c.mu.Unlock()
	return key
}

func (c *keyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
