package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/httpapi"
)

// TestEveryRouteHasAMethod calls every method of the client against a
// server that serves exactly the server's route table (httpapi.Routes),
// and checks that every route was reached and nothing else was called.
func TestEveryRouteHasAMethod(t *testing.T) {
	routes := httpapi.New(httpapi.Options{MetricsAuth: true}).Routes()
	if len(routes) < 30 {
		t.Fatalf("only %d routes in the table", len(routes))
	}
	var mu sync.Mutex
	hit := map[string]int{}
	mux := http.NewServeMux()
	patterns := []string{"GET /health/ready", "GET /health/live"}
	for _, rt := range routes {
		patterns = append(patterns, rt.Method+" "+rt.Path)
	}
	for _, p := range patterns {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hit[p]++
			mu.Unlock()
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"key_id":"k","key_metadata":{"key_id":"k"},"status":"ready"}`)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the client called %s %s, which the server does not serve", r.Method, r.URL.Path)
		http.NotFound(w, r)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := newTestClient(t, srv.URL, WithRetries(0, 0))
	ctx := context.Background()
	k := "k"
	calls := []func() error{
		func() error { _, err := c.Configure(ctx, ConfigureRequest{BackendType: new("local")}); return err },
		func() error { _, err := c.CreateAlias(ctx, "alias/a", k); return err },
		func() error { _, err := c.UpdateAlias(ctx, "alias/a", k); return err },
		func() error { _, err := c.DeleteAlias(ctx, "alias/a"); return err },
		func() error { _, err := c.ListAliases(ctx, ListAliasesRequest{}); return err },
		func() error { _, err := c.Reconfigure(ctx, ConfigureRequest{}); return err },
		func() error { _, err := c.Start(ctx, StartRequest{}); return err },
		func() error { _, err := c.Stop(ctx); return err },
		func() error { _, err := c.Status(ctx); return err },
		func() error { _, err := c.ServiceStatus(ctx); return err },
		func() error { _, err := c.Config(ctx); return err },
		func() error { return c.ClearCache(ctx) },
		func() error { _, err := c.CreateKey(ctx, CreateKeyRequest{KeyID: k}); return err },
		func() error { _, err := c.ListKeys(ctx, ListKeysRequest{}); return err },
		func() error { _, err := c.DescribeKey(ctx, k); return err },
		func() error { _, err := c.ScheduleKeyDeletion(ctx, k, 7); return err },
		func() error { return c.DestroyKeyNow(ctx, k) },
		func() error { _, err := c.CancelKeyDeletion(ctx, k); return err },
		func() error { _, err := c.EnableKey(ctx, k); return err },
		func() error { _, err := c.DisableKey(ctx, k); return err },
		func() error { _, err := c.RotateKey(ctx, k); return err },
		func() error { _, err := c.SetKeyRotation(ctx, k, true, 90); return err },
		func() error { _, err := c.UpdateKeyDescription(ctx, k, "d"); return err },
		func() error { _, err := c.TagKey(ctx, k, map[string]string{"a": "b"}); return err },
		func() error { _, err := c.UntagKey(ctx, k, "a"); return err },
		func() error { _, err := c.GenerateDataKey(ctx, GenerateDataKeyRequest{KeyID: k}); return err },
		func() error {
			_, err := c.GenerateDataKeyWithoutPlaintext(ctx, GenerateDataKeyRequest{KeyID: k})
			return err
		},
		func() error { _, err := c.Encrypt(ctx, EncryptRequest{KeyID: k, Plaintext: []byte("x")}); return err },
		func() error { _, err := c.Decrypt(ctx, DecryptRequest{CiphertextBlob: []byte{1}}); return err },
		func() error {
			_, err := c.ReEncrypt(ctx, ReEncryptRequest{CiphertextBlob: []byte{1}, DestinationKeyID: k})
			return err
		},
		func() error { _, err := c.CreateKeyLegacy(ctx, CreateKeyRequest{KeyID: k}); return err },
		func() error { _, err := c.KeyCreateLegacy(ctx, CreateKeyRequest{KeyID: k}); return err },
		func() error { _, err := c.DescribeKeyLegacy(ctx, k); return err },
		func() error { _, err := c.KeyStatusLegacy(ctx, k); return err },
		func() error { _, err := c.ListKeysLegacy(ctx, ListKeysRequest{}); return err },
		func() error { _, err := c.ManagementStatus(ctx); return err },
		func() error { _, err := c.Metrics(ctx); return err },
		func() error { _, err := c.Health(ctx); return err },
		func() error { return c.Live(ctx) },
		func() error {
			// This stand-in server sends no trailers: the backup is incomplete.
			if _, err := c.Backup(ctx, BackupRequest{Recipients: []string{"age1x"}}, io.Discard); !errors.Is(err, ErrIncompleteBackup) {
				return err
			}
			return nil
		},
		func() error {
			_, err := c.Restore(ctx, strings.NewReader("archive"), RestoreRequest{Identity: "x"})
			return err
		},
	}
	for i, call := range calls {
		if err := call(); err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	for _, p := range patterns {
		if hit[p] == 0 {
			t.Errorf("no client method for %s", p)
		}
	}
	t.Logf("%d routes, %d client calls", len(patterns), len(calls))
}
