package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/vaulttest"
)

// TestFailoverToAnotherServer runs two Keyward servers over one Vault (the
// same keys) and a client that knows both (endpoint "A,B"), under load
// from several goroutines (generate, decrypt, describe, list, and
// creates), and kills A with SIGKILL: no idempotent call fails (each moves
// to B), every create the client saw succeed exists, and the CLI given
// both endpoints works with A gone.
func TestFailoverToAnotherServer(t *testing.T) {
	t.Parallel()
	v := vaulttest.StartDev(t)
	secret := "root-failover-secret-0123456789"
	a, b := startServerWithSecret(t, secret), startServerWithSecret(t, secret)
	ctx := context.Background()
	prefix := fmt.Sprintf("failover/%d", time.Now().UnixNano())
	for _, s := range []*testServer{a, b} {
		c := s.client(t)
		backend, addr, tok := "vault", v.Addr, v.Token
		if _, err := c.Configure(ctx, client.ConfigureRequest{BackendType: &backend, Address: &addr, Auth: &client.VaultAuth{Token: tok}, KeyPathPrefix: &prefix}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Start(ctx, client.StartRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(a.URL+","+b.URL, a.AccessKey, secret, client.WithRetries(3, 20*time.Millisecond), client.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyID: "fo-key"}); err != nil {
		t.Fatal(err)
	}

	var (
		stop                sync.WaitGroup
		halt                atomic.Bool
		mu                  sync.Mutex
		failed              []string
		calls, after        atomic.Int64
		killed              atomic.Int64 // unix ns of the kill
		created, createErrs []string
	)
	fail := func(what string, err error) {
		mu.Lock()
		failed = append(failed, fmt.Sprintf("%s: %v", what, err))
		mu.Unlock()
	}
	for w := range 4 {
		stop.Add(1)
		go func() {
			defer stop.Done()
			encCtx := map[string]string{"worker": fmt.Sprint(w)}
			for i := 0; !halt.Load(); i++ {
				dk, err := c.GenerateDataKey(ctx, client.GenerateDataKeyRequest{KeyID: "fo-key", EncryptionContext: encCtx})
				if err != nil {
					fail("generate", err)
					continue
				}
				pt, err := c.Decrypt(ctx, client.DecryptRequest{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: encCtx})
				switch {
				case err != nil:
					fail("decrypt", err)
				case !bytes.Equal(pt.Plaintext, dk.Plaintext):
					fail("decrypt", errors.New("another plaintext"))
				}
				if _, err := c.DescribeKey(ctx, "fo-key"); err != nil {
					fail("describe", err)
				}
				if _, err := c.ListKeys(ctx, client.ListKeysRequest{Limit: 10}); err != nil {
					fail("list", err)
				}
				calls.Add(4)
				if killed.Load() != 0 {
					after.Add(4)
				}
			}
		}()
	}
	stop.Add(1)
	go func() { // creates: not idempotent, sent once (see "Several endpoints")
		defer stop.Done()
		for i := 0; !halt.Load(); i++ {
			id := fmt.Sprintf("fo-created-%d", i)
			_, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyID: id})
			mu.Lock()
			if err == nil {
				created = append(created, id)
			} else {
				createErrs = append(createErrs, err.Error())
			}
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	a.Stop() // SIGKILL
	killed.Store(time.Now().UnixNano())
	time.Sleep(2 * time.Second)
	halt.Store(true)
	stop.Wait()

	if len(failed) > 0 {
		t.Errorf("%d of %d idempotent calls failed across the kill; first: %s", len(failed), calls.Load(), failed[0])
	}
	if after.Load() == 0 {
		t.Fatal("no call succeeded after the kill")
	}
	if got := c.Endpoints(); got[0] != b.URL {
		t.Errorf("endpoint in use after the kill: %s, want B (%s)", got[0], b.URL)
	}
	for _, id := range created {
		if _, err := c.DescribeKey(ctx, id); err != nil {
			t.Errorf("a create the client saw succeed: %s: %v", id, err)
		}
	}
	t.Logf("%d idempotent calls (%d after the kill), %d creates succeeded, %d failed (sent once: %v)",
		calls.Load(), after.Load(), len(created), len(createErrs), createErrs)

	// The CLI, with both endpoints in KEYWARD_ENDPOINT and A gone.
	cmd := exec.Command(keywardBinary(t), "key", "describe", "fo-key", "--json")
	cmd.Env = append(os.Environ(), "KEYWARD_ENDPOINT="+a.URL+","+b.URL, "KEYWARD_ACCESS_KEY="+a.AccessKey, "KEYWARD_SECRET_KEY="+secret)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"fo-key"`) {
		t.Errorf("keyward key describe with A down: %v\n%s", err, out)
	}
}
