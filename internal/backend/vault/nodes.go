package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/keyward/keyward/internal/kms"
)

// Several Vault nodes (docs/vault.md, "A Vault cluster").
//
// `address` may name several nodes of one Vault cluster, comma-separated.
// Keyward talks to one of them at a time (the first, to begin with); a
// standby forwards requests to the active node. When the node in use stops
// answering (refused or dropped connections, timeouts), is sealed, or
// answers that it is not the active node and cannot forward (a 3xx, which
// a standby sends while no active node is elected; "local node not
// active"; 502, 503, 504), the connection moves to the next node in the
// list, for every request from then on, and:
//
//   - a read (GET, LIST) and a Transit encrypt or decrypt (which change
//     nothing in Vault) are sent again at once to the next node, each node
//     being tried once per call before the retry policy's backoff applies;
//   - any other write is sent again only when the failure proves it was
//     not executed: the connection could not be made, or Vault answered
//     that it is sealed, not active, or redirected it. Otherwise (a
//     connection lost after sending, a timeout) the call fails with
//     kms.ErrUnavailable (503 to the client): a write that may have
//     happened is never repeated.
//
// With several addresses the library's own following of redirects is
// off: a standby's redirect during an election names the old active node,
// and a redirect is a failure that proves the request was not executed.
// With one address nothing changes.

// splitAddresses returns the configured addresses: one URL, or several
// separated by commas (spaces around them ignored, empty ones dropped).
func splitAddresses(address string) []string {
	var out []string
	for _, a := range strings.Split(address, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// multi reports whether the connection has several nodes to move between.
func (c *conn) multi() bool { return len(c.addrs) > 1 }

// current is the index of the node in use.
func (c *conn) nodeInUse() int { return int(c.node.Load()) }

// failover moves to the node after `from` if `from` is still the node in
// use (concurrent callers that saw the same node fail move once).
func (c *conn) failover(from int) {
	if !c.multi() {
		return
	}
	c.switchTo((from+1)%len(c.addrs), from)
}

// switchTo makes node `to` the one in use if `from` still is.
func (c *conn) switchTo(to, from int) {
	c.nodeMu.Lock()
	defer c.nodeMu.Unlock()
	if c.nodeInUse() != from || to == from {
		return
	}
	if err := c.client.SetAddress(c.addrs[to]); err != nil {
		return // validated at dial: cannot happen
	}
	_ = c.loginClient.SetAddress(c.addrs[to])
	c.node.Store(int32(to))
	c.switches.Add(1)
	// Node positions, not addresses: logs and errors never carry Vault's
	// address (see doc.go).
	c.log.Warn("vault: the node in use does not answer; moving to the next node of address", "from_node", from+1, "to_node", to+1, "nodes", len(c.addrs))
}

// nodeFailure reports a failure of the node rather than of the request:
// worth moving to another node for.
func nodeFailure(err error) bool {
	var ce *callError
	if !errors.As(err, &ce) {
		return false
	}
	return ce.Status == 0 || ce.redirect() || ce.Status == http.StatusBadGateway || ce.Status == http.StatusServiceUnavailable ||
		ce.Status == http.StatusGatewayTimeout || ce.has("Vault is sealed") || ce.has("local node not active")
}

// notExecuted reports a failure that proves Vault did not execute the
// request: nothing was sent (the connection could not be made), or Vault
// answered that it is sealed, not the active node, or redirected it.
func notExecuted(err error) bool {
	var ce *callError
	if !errors.As(err, &ce) {
		return false
	}
	return ce.dial || ce.redirect() || ce.has("Vault is sealed") || ce.has("local node not active")
}

// isDial reports an error of making the connection (nothing was sent).
func isDial(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// redirectError is the answer of a standby that redirects instead of
// forwarding (while no active node is elected): the request was not
// executed.
func redirectError(method, p string, status int) *callError {
	return &callError{Method: method, Path: p, Status: status, Messages: []string{"redirected by a standby node (no active node reachable through it)"}}
}

// health asks sys/health within healthTimeout, first of the node in use,
// then (with several nodes) of the others in turn, moving to the first
// that is healthy. Healthy is initialized and unsealed, answering as the
// active node or as a standby (429), which forwards requests to the
// active node.
func (c *conn) health(ctx context.Context) error {
	from := c.nodeInUse()
	err := c.healthOf(ctx, from)
	if err == nil || !c.multi() {
		return err
	}
	for i := 1; i < len(c.addrs); i++ {
		n := (from + i) % len(c.addrs)
		if c.healthOf(ctx, n) == nil {
			c.switchTo(n, from)
			return nil
		}
	}
	return err
}

// healthOf asks node n's sys/health.
func (c *conn) healthOf(ctx context.Context, n int) error {
	hctx, cancel := context.WithTimeout(ctx, min(c.timeout, healthTimeout))
	defer cancel()
	base := c.bases[n]
	if base == nil { // not a plain http(s) address: through the library
		return c.libraryHealth(hctx, ctx)
	}
	u := *base
	u.Path = path.Join(base.Path, "/v1/sys/health")
	u.RawPath = ""
	req, err := http.NewRequestWithContext(hctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("%w: vault sys/health: %v", kms.ErrUnavailable, err)
	}
	req.Header.Set("X-Vault-Request", "true")
	if ns := c.client.Namespace(); ns != "" {
		req.Header.Set("X-Vault-Namespace", ns)
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return c.classify(ctx, http.MethodGet, "sys/health", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusTooManyRequests {
		msg := "Vault is sealed or not initialized"
		if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusNotImplemented {
			msg = fmt.Sprintf("Vault's sys/health answered HTTP %d", resp.StatusCode)
		}
		return fmt.Errorf("%w: %s", kms.ErrUnavailable, msg)
	}
	return decodeHealth(resp.Body)
}

// libraryHealth is the health check through the vault/api client (a unix
// socket address).
func (c *conn) libraryHealth(hctx, ctx context.Context) error {
	resp, err := c.client.Logical().ReadRawWithContext(hctx, "sys/health")
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		err = c.classify(ctx, http.MethodGet, "sys/health", err)
		var ce *callError
		if errors.As(err, &ce) && !ce.unavailable() {
			// 501 (not initialized) and the like: not usable either.
			return fmt.Errorf("%w: %v", kms.ErrUnavailable, err)
		}
		return err
	}
	return decodeHealth(resp.Body)
}

func decodeHealth(body io.Reader) error {
	var h struct {
		Initialized bool `json:"initialized"`
		Sealed      bool `json:"sealed"`
	}
	if err := json.NewDecoder(io.LimitReader(body, maxResponse)).Decode(&h); err != nil {
		return fmt.Errorf("%w: vault sys/health: the answer does not decode", kms.ErrUnavailable)
	}
	if !h.Initialized || h.Sealed {
		return fmt.Errorf("%w: Vault is sealed or not initialized", kms.ErrUnavailable)
	}
	return nil
}

// parseBase is an address as the fast path's base URL, or nil when it is
// not plain http(s) (a unix socket, which the library dials itself).
func parseBase(addr string) *url.URL {
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil
	}
	return u
}
