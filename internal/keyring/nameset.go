package keyring

import (
	"slices"
	"strings"
)

// nameSet is a sorted set of names kept in blocks of at most
// 2*nameBlock names: a lookup, an insertion or a removal costs a binary
// search over the blocks, one within a block and a copy of at most one
// block, and a page of n names after a given name costs O(log N + n). A
// single sorted slice would copy half the key set on every insertion
// (100,000 keys: 800 KB per create); a map has no order to page by.
type nameSet struct {
	blocks [][]string // each sorted and non-empty; blocks in order
	n      int
}

// nameBlock is half the largest block: a full block splits into two of
// this size.
const nameBlock = 256

// Len is the number of names.
func (s *nameSet) Len() int { return s.n }

// block returns the index of the first block whose last name is >= name
// (len(s.blocks) when there is none).
func (s *nameSet) block(name string) int {
	i, _ := slices.BinarySearchFunc(s.blocks, name, func(b []string, name string) int {
		return strings.Compare(b[len(b)-1], name)
	})
	return i
}

// Has reports whether name is in the set.
func (s *nameSet) Has(name string) bool {
	bi := s.block(name)
	if bi == len(s.blocks) {
		return false
	}
	_, found := slices.BinarySearch(s.blocks[bi], name)
	return found
}

// Insert adds name; it reports whether it was missing.
func (s *nameSet) Insert(name string) bool {
	bi := s.block(name)
	if bi == len(s.blocks) {
		if bi == 0 {
			s.blocks = append(s.blocks, []string{name})
			s.n++
			return true
		}
		bi-- // after every name: append to the last block
	}
	b := s.blocks[bi]
	i, found := slices.BinarySearch(b, name)
	if found {
		return false
	}
	b = slices.Insert(b, i, name)
	if len(b) > 2*nameBlock {
		// Split: the halves get their own backing arrays, so that the
		// second half's growth never writes into the first's.
		lo, hi := slices.Clip(b[:nameBlock]), slices.Clone(b[nameBlock:])
		s.blocks = slices.Insert(s.blocks, bi+1, hi)
		b = lo
	}
	s.blocks[bi] = b
	s.n++
	return true
}

// Delete removes name; it reports whether it was there.
func (s *nameSet) Delete(name string) bool {
	bi := s.block(name)
	if bi == len(s.blocks) {
		return false
	}
	b := s.blocks[bi]
	i, found := slices.BinarySearch(b, name)
	if !found {
		return false
	}
	b = slices.Delete(b, i, i+1)
	if len(b) == 0 {
		s.blocks = slices.Delete(s.blocks, bi, bi+1)
	} else {
		s.blocks[bi] = b
	}
	s.n--
	return true
}

// Ascend calls f with each name greater than after, in order, until f
// returns false.
func (s *nameSet) Ascend(after string, f func(string) bool) {
	bi := s.block(after)
	if bi == len(s.blocks) {
		return
	}
	b := s.blocks[bi]
	i, found := slices.BinarySearch(b, after)
	if found {
		i++
	}
	for ; bi < len(s.blocks); bi, i = bi+1, 0 {
		for _, name := range s.blocks[bi][i:] {
			if !f(name) {
				return
			}
		}
	}
}

// First returns the first name greater than after ("" and false when
// there is none).
func (s *nameSet) First(after string) (string, bool) {
	var out string
	ok := false
	s.Ascend(after, func(name string) bool { out, ok = name, true; return false })
	return out, ok
}
