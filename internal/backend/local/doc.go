// Package local is Keyward's "local" backend: key records kept as one file
// per key in a directory on local disk (FileStore), sealed with AES-256-GCM
// under a key-encryption key that never touches the directory in the clear
// (AEADSealer).
//
// The two halves are deliberately separate (see keyring.Store and
// keyring.Sealer): FileStore stores opaque bytes and knows nothing about
// cryptography, AEADSealer knows nothing about files. The kms layer seals a
// record with the key id as associated data and hands the sealed bytes to
// the store, so a record copied or renamed to another id fails to open.
//
// # Files
//
// In the key directory (mode 0700):
//
//	<id>.key           one key record (format below), mode 0600 by default
//	.tmp-<digits>      a write in progress; removed by OpenFileStore after a crash
//	kdf-params.json    (recommended location) Argon2id parameters, salt and check value
//
// Record file ("KWKF" format, version 1; see encodeRecord):
//
//	offset  size  field
//	0       4     magic "KWKF"
//	4       1     format version, 1
//	5       8     revision, big-endian uint64, >= 1 (1 on Create, +1 per Update)
//	13      4     value length n, big-endian uint32, <= MaxValueSize
//	17      n     value (the sealed record produced by the Sealer)
//	17+n    4     CRC-32C (Castagnoli) of bytes [0, 17+n), big-endian
//
// The checksum catches torn or damaged files before the AEAD is even tried,
// so "the disk ate this file" (kms.ErrCorrupt from the store) is told apart
// from "this file was sealed under another master key" (kms.ErrCorrupt from
// the sealer, after a passing checksum).
//
// Sealed value (AEADSealer, version 1):
//
//	1 byte version (1) | 12-byte random nonce | AES-256-GCM ciphertext and 16-byte tag
//
// The GCM associated data is the version byte followed by the caller's aad,
// so the version byte is authenticated too.
//
// The full description, with the KDF parameter and root-key files, is in
// docs/local-key-files.md.
//
// # Concurrency
//
// Create is safe across processes (hard links give exactly one winner).
// Update and Delete serialise on a per-name lock inside one process only: one
// Keyward process per key directory. Two FileStores in one process on one
// directory (a reconfigure that swaps the backend) are fine, because the
// per-name locks are shared by directory path within the process.
package local
