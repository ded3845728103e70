package wipe

import (
	"bytes"
	"errors"
	"testing"
	"testing/iotest"
)

func TestReadAll(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 300)
	for _, hint := range []int64{-1, 0, 10, int64(len(data))} {
		got, err := ReadAll(iotest.OneByteReader(bytes.NewReader(data)), hint, 1<<20)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("hint %d: %v", hint, err)
		}
	}
	if _, err := ReadAll(bytes.NewReader(data), -1, 100); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := ReadAll(bytes.NewReader(data), int64(len(data)), 100); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("announced over the limit: %v", err)
	}
	if got, err := ReadAll(iotest.ErrReader(iotest.ErrTimeout), -1, 100); err == nil || got != nil {
		t.Fatal("read error not reported")
	}
}

// TestGrowingWipesOldBuffer: the buffer a read outgrew holds zeros.
func TestGrowingWipesOldBuffer(t *testing.T) {
	start := make([]byte, 0, 4)
	got, err := ReadAllInto(start, bytes.NewReader([]byte("secret-plaintext")), 100)
	if err != nil || string(got) != "secret-plaintext" {
		t.Fatal(err)
	}
	if !bytes.Equal(start[:4], make([]byte, 4)) {
		t.Fatalf("outgrown buffer not wiped: %q", start[:4])
	}
}

// TestUnknownLengthStaysNearLimit: a body of unknown length never gets a
// buffer more than one byte past the limit (the server reserves the limit
// for such a body from its memory budget).
func TestUnknownLengthStaysNearLimit(t *testing.T) {
	const limit = 3000
	data := bytes.Repeat([]byte("x"), limit)
	got, err := ReadAll(bytes.NewReader(data), -1, limit)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("exactly the limit: %v", err)
	}
	if cap(got) > limit+1 {
		t.Errorf("a %d-byte body with a %d limit got a %d-byte buffer", limit, limit, cap(got))
	}
	if _, err := ReadAll(bytes.NewReader(append(data, 'y')), -1, limit); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one byte over the limit: %v", err)
	}
}
