module github.com/keyward/keyward/interop/kes

go 1.26.8

require github.com/minio/kms-go/kes v0.3.1

require (
	aead.dev/mem v0.2.0 // indirect
	github.com/prometheus/client_model v0.6.0 // indirect
	github.com/prometheus/common v0.51.1 // indirect
	google.golang.org/protobuf v1.33.0 // indirect
)
