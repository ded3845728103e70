package local

import (
	"hash/fnv"
	"sync"
)

// lockFor returns the mutex serialising Update and Delete of one record
// file. The locks are striped by a hash of the absolute path and shared by
// every FileStore in the process, so two stores on one directory still
// exclude each other; a collision only makes two names share a lock.
func lockFor(path string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(path))
	return &nameLocks[h.Sum32()%uint32(len(nameLocks))]
}

var nameLocks [256]sync.Mutex
