package kms

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func FuzzParseBlob(f *testing.F) {
	golden, _ := hex.DecodeString("010a676f6c64656e2d6b657900000001404142434445464748494a4bc2988c000219a124e5ed3d1db7493d7449f7606f830039144f7e74deab2ed3e4b08da6f36f2bca0ff53fd4edccf62d77")
	f.Add(golden)
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 255, 'a'})
	f.Add(append([]byte{1, 1, 'a', 0, 0, 0, 0}, make([]byte, 16)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		blob, err := ParseBlob(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidCiphertext) {
				t.Fatalf("rejection does not wrap ErrInvalidCiphertext: %v", err)
			}
			return
		}
		// An accepted blob re-marshals to exactly its input.
		h, err := BlobHeader(blob.KeyID, blob.KeyVersion)
		if err != nil {
			t.Fatalf("accepted blob has an invalid header: %v", err)
		}
		if !bytes.Equal(MarshalBlob(h, blob.Ciphertext), b) || !bytes.Equal(h, blob.Header()) {
			t.Fatal("round trip differs")
		}
	})
}

func TestContextEncodingIsCanonical(t *testing.T) {
	h := []byte{1}
	a, _ := BlobAssociatedData(h, map[string]string{"x": "1", "y": "2", "z": ""})
	b, _ := BlobAssociatedData(h, map[string]string{"z": "", "y": "2", "x": "1"})
	if !bytes.Equal(a, b) {
		t.Fatal("map order changed the encoding")
	}
	empty, _ := BlobAssociatedData(h, nil)
	empty2, _ := BlobAssociatedData(h, map[string]string{})
	if !bytes.Equal(empty, []byte{1, 0}) || !bytes.Equal(empty, empty2) {
		t.Fatalf("empty context: %x", empty)
	}
	// Length prefixes keep ambiguous splits apart.
	c, _ := BlobAssociatedData(h, map[string]string{"ab": "c"})
	d, _ := BlobAssociatedData(h, map[string]string{"a": "bc"})
	if bytes.Equal(c, d) {
		t.Fatal("ambiguous encoding")
	}
	big := map[string]string{}
	for i := 0; i < 65; i++ {
		big[string(rune('A'+i))] = "v"
	}
	if _, err := BlobAssociatedData(h, big); !errors.Is(err, ErrInvalidRequest) {
		t.Fatal("oversized context accepted")
	}
	if _, err := BlobAssociatedData(h, map[string]string{"k": string(make([]byte, 9000))}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatal("oversized context value accepted")
	}
}
