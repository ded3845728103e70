package iam

import "testing"

// BenchmarkAllowed measures the per-request authorization check.
func BenchmarkAllowed(b *testing.B) {
	s := newStore(b, matrixFile)
	cases := []struct {
		name, ak, action, res string
		want                  bool
	}{
		{"root", rootAK, "kms:Configure", NoKey, true},
		{"builtin", "user", "kms:GenerateDataKey", KeyResource("app-1"), true},
		{"scoped-prefix-hit", "ops", "kms:Decrypt", KeyResource("app-1"), true},
		{"scoped-miss", "ops", "kms:Decrypt", KeyResource("other"), false},
		{"deny-exact", "denier", "kms:Decrypt", KeyResource("other"), false},
		{"keyless", "auditor", "kms:ListKeys", NoKey, true},
		{"no-statement", "auditor", "kms:Decrypt", KeyResource("app-1"), false},
		{"unknown-user", "nobody-here", "kms:Decrypt", KeyResource("app-1"), false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if s.Allowed(c.ak, c.action, c.res) != c.want {
				b.Fatal("wrong decision")
			}
			b.ReportAllocs()
			for b.Loop() {
				s.Allowed(c.ak, c.action, c.res)
			}
		})
	}
}

func BenchmarkSecretKey(b *testing.B) {
	s := newStore(b, matrixFile)
	b.ReportAllocs()
	for b.Loop() {
		s.SecretKey("ops")
	}
}
