// Package vault implements Keyward's two HashiCorp Vault backends
// (operator documentation in docs/vault.md).
//
// # vault
//
// A keyring.Keyring over Vault: each key is one KV v2 record at
// {kv_mount}/data/{key_path_prefix}/{key_id} whose "sealed" field holds the
// keyring's record (metadata and every version's material) sealed by the
// Transit key {mount_path}/keys/keyward-record-kek, with the key id as
// associated data. KV read access alone therefore reveals no material, and
// a record copied to another id does not open. Material is unsealed once
// and cached (docs/vault.md, "Caching and several nodes"): generate and
// decrypt make no Vault call on a warm cache; every 5 s one caller
// re-checks the KV version, so a change made by another node is seen
// within that interval.
//
// # vault-transit
//
// Each master key is the Transit key {mount_path}/keys/{key_id}, created by
// Keyward (aes256-gcm96, not exportable); its material never leaves Vault, and
// every wrap and unwrap is exactly one Transit call with the blob header
// and encryption context as associated data. The metadata lives in the
// same sealed KV v2 record as for vault (without material), cached and
// revalidated the same way; records of Keyward 0.1, which were not sealed,
// are sealed once by migrate.go.
//
// # Writes and concurrency
//
// Every KV write is check-and-set: cas=0 on create (one winner among
// concurrent creators on any node), cas=<version read> on update. Deletion
// is a tombstone version written with cas (one winner among concurrent
// destroyers; the others get kms.ErrNotFound), then DELETE of the metadata
// (every version, for good). See kvStore.
//
// keyring.Destroy opens the record and checks its precondition on one KV
// version, and kvRecords.Delete deletes exactly that version, on both
// backends.
//
// # Ownership
//
// Keyward changes or deletes only what its own KV record proves it
// created (docs/vault.md): a KV object that is not a readable Keyward
// record is never deleted, a path whose current version was deleted
// outside Keyward is never reused, and a Transit key is used, rotated or
// deleted only when the key's record says "transit": "owned" (see
// transitMaterial: Commit, Usable and Destroy).
//
// # Calls
//
// Every HTTP attempt has its own deadline (timeout_seconds). GET and LIST
// are retried retry_attempts times with exponential backoff (100 ms,
// 200 ms, 400 ms, ... capped at 2 s) on transport failures and 5xx; writes
// and 4xx answers never are. The vault/api client's own retries are off.
// Unreachable, timed out, 502/503/504/429 and a sealed Vault wrap
// kms.ErrUnavailable; a 404 is kms.ErrNotFound; a 403 is a plain error
// naming the denied path. Errors and logs never carry tokens, secret ids,
// request bodies or Vault's address.
//
// # Several nodes
//
// The address may name the nodes of one Vault cluster, comma-separated:
// the connection uses one at a time and moves to the next when it fails;
// reads and Transit encrypt/decrypt are sent again at once to the next
// node, other writes only when the failure proves they were not executed
// (nodes.go).
//
// # Authentication
//
// Token or AppRole; see auth.go for renewal and re-login.
package vault
