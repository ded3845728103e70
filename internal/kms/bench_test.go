package kms_test

import (
	"testing"

	"github.com/keyward/keyward/internal/kms"
)

var benchContext = map[string]string{"bucket": "analytics-data", "object": "2024/09/18/report.parquet"}

// BenchmarkGenerateDataKey is data-key generation and sealing on a warm
// cache: fresh randomness, state check, header, context encoding, AES-GCM.
func BenchmarkGenerateDataKey(b *testing.B) {
	f := newFixture(b, kms.Options{Rand: cryptoRand{}})
	f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "bench"})
	b.ReportAllocs()
	for b.Loop() {
		_, pt, _, err := f.svc.GenerateDataKey(ctx, "bench", 32, benchContext)
		if err != nil {
			b.Fatal(err)
		}
		clear(pt)
	}
}

func BenchmarkDecrypt(b *testing.B) {
	f := newFixture(b, kms.Options{Rand: cryptoRand{}})
	f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "bench"})
	_, _, blob, _ := f.svc.GenerateDataKey(ctx, "bench", 32, benchContext)
	b.ReportAllocs()
	for b.Loop() {
		_, pt, err := f.svc.Decrypt(ctx, blob, benchContext, "")
		if err != nil {
			b.Fatal(err)
		}
		clear(pt)
	}
}

func BenchmarkParseBlob(b *testing.B) {
	f := newFixture(b, kms.Options{Rand: cryptoRand{}})
	f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "bench"})
	_, _, blob, _ := f.svc.GenerateDataKey(ctx, "bench", 32, benchContext)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kms.ParseBlob(blob); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkContextEncoding(b *testing.B) {
	header, _ := kms.BlobHeader("bench", 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kms.BlobAssociatedData(header, benchContext); err != nil {
			b.Fatal(err)
		}
	}
}
