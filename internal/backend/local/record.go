package local

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Record file layout constants. The layout is documented in doc.go and in
// docs/local-key-files.md; changing any of these breaks every existing key
// directory, which is why TestRecordGolden freezes an encoded record.
const (
	recordMagic      = "KWKF"
	recordVersion    = 1
	recordHeaderSize = 4 + 1 + 8 + 4 // magic, version, revision, length
	recordCRCSize    = 4
	recordOverhead   = recordHeaderSize + recordCRCSize

	// MaxValueSize bounds one stored value. A sealed key record is a few
	// hundred bytes per key version, so 4 MiB leaves room for thousands of
	// rotations while keeping a damaged length field (or a huge foreign file
	// named like a key) from making Get allocate without bound.
	MaxValueSize = 4 << 20

	maxRecordSize = MaxValueSize + recordOverhead
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeRecord builds a record file. rev must be >= 1 and len(value) <=
// MaxValueSize; callers check both before calling.
func encodeRecord(rev uint64, value []byte) []byte {
	b := make([]byte, recordHeaderSize, len(value)+recordOverhead)
	copy(b, recordMagic)
	b[4] = recordVersion
	binary.BigEndian.PutUint64(b[5:13], rev)
	binary.BigEndian.PutUint32(b[13:17], uint32(len(value)))
	b = append(b, value...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// Reasons parseRecordFile rejects a file. They name the defect, never the
// content, and the store wraps them together with the file path and
// kms.ErrCorrupt.
var (
	errRecordShort    = errors.New("file too short for a record")
	errRecordMagic    = errors.New("bad magic (not a Keyward key file)")
	errRecordVersion  = errors.New("unknown record format version")
	errRecordRevision = errors.New("revision 0 is invalid")
	errRecordLength   = errors.New("length field does not match the file size")
	errRecordChecksum = errors.New("checksum mismatch")
)

// parseRecordFile is the strict inverse of encodeRecord: every accepted b
// satisfies encodeRecord(parseRecordFile(b)) == b, so there is exactly one
// valid encoding of a record and nothing (trailing bytes, a stale length)
// can hide in a file. value aliases b.
func parseRecordFile(b []byte) (rev uint64, value []byte, err error) {
	if len(b) < recordOverhead {
		return 0, nil, errRecordShort
	}
	if string(b[:4]) != recordMagic {
		return 0, nil, errRecordMagic
	}
	if b[4] != recordVersion {
		return 0, nil, errRecordVersion
	}
	n := uint64(binary.BigEndian.Uint32(b[13:17]))
	if n > MaxValueSize || n != uint64(len(b)-recordOverhead) {
		return 0, nil, errRecordLength
	}
	body := b[:recordHeaderSize+int(n)]
	if binary.BigEndian.Uint32(b[len(body):]) != crc32.Checksum(body, castagnoli) {
		return 0, nil, errRecordChecksum
	}
	// Checked after the CRC so that a random bit flip reports as a checksum
	// failure, which is the more useful message.
	rev = binary.BigEndian.Uint64(b[5:13])
	if rev == 0 {
		return 0, nil, errRecordRevision
	}
	return rev, body[recordHeaderSize:], nil
}
