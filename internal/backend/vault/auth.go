package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Token maintenance. A token from AppRole, or a configured token that is
// renewable, is renewed (auth/token/renew-self) when two thirds of its TTL
// have passed, asking for the TTL it was issued with. A renewal that comes
// back shorter than asked means the token hit its max TTL: AppRole then
// logs in again right away (while the old token still has a third of a TTL
// or more left, so no call ever meets an expired token), a configured
// token is left to expire (an operator must reconfigure a fresh one; the
// log says when).
// A failed renewal is retried with backoff; with AppRole a failed renewal
// falls back to a fresh login, which also recovers from a token that
// expired while Vault was down. A root or other non-expiring token needs
// nothing.

const (
	// reauthInterval spaces logins forced by refused requests.
	reauthInterval   = 10 * time.Second
	minRefreshWait   = 100 * time.Millisecond
	maxRefreshBackof = 30 * time.Second
)

// lease is what Keyward knows about its current token (never the token).
type lease struct {
	obtained  time.Time
	ttl       time.Duration // 0: never expires
	renewable bool
	increment time.Duration // the TTL asked for on renewal
	atMax     bool          // the last renewal was capped by the max TTL
}

func (l lease) refreshAt() time.Time { return l.obtained.Add(l.ttl * 2 / 3) }

// authAnswer is the "auth" block of a login or renewal answer.
type authAnswer struct {
	Auth *struct {
		ClientToken   string `json:"client_token"`
		LeaseDuration int64  `json:"lease_duration"`
		Renewable     bool   `json:"renewable"`
	} `json:"auth"`
}

// login authenticates with the configured method and installs the token.
func (c *conn) login(ctx context.Context) (lease, error) {
	if c.auth.Method == "approle" {
		return c.loginAppRole(ctx)
	}
	return c.useToken(ctx)
}

// loginAppRole logs in at auth/approle/login. The request body carries
// the secret id: it goes to Vault only, and is wiped after sending.
func (c *conn) loginAppRole(ctx context.Context) (lease, error) {
	payload, err := json.Marshal(map[string]string{"role_id": c.auth.RoleID, "secret_id": c.auth.SecretID})
	if err != nil {
		return lease{}, fmt.Errorf("vault: encoding the AppRole login: %w", err)
	}
	defer clear(payload)
	start := time.Now()
	var out authAnswer
	if err := c.attempt(ctx, c.loginClient, http.MethodPut, "auth/approle/login", payload, &out); err != nil {
		return lease{}, fmt.Errorf("vault: AppRole login failed: %w", err)
	}
	if out.Auth == nil || out.Auth.ClientToken == "" {
		return lease{}, fmt.Errorf("vault: AppRole login returned no token")
	}
	c.client.SetToken(out.Auth.ClientToken)
	c.logins.Add(1)
	ttl := time.Duration(out.Auth.LeaseDuration) * time.Second
	return lease{obtained: start, ttl: ttl, renewable: out.Auth.Renewable, increment: ttl}, nil
}

// useToken installs the configured token and looks up its TTL. A token
// whose policy does not allow lookup-self is used without renewal (a
// warning says so); an invalid token then fails the mount checks in Open.
func (c *conn) useToken(ctx context.Context) (lease, error) {
	c.client.SetToken(c.auth.Token)
	start := time.Now()
	var out struct {
		Data struct {
			TTL         int64 `json:"ttl"`
			CreationTTL int64 `json:"creation_ttl"`
			Renewable   bool  `json:"renewable"`
		} `json:"data"`
	}
	err := c.call(ctx, http.MethodGet, "auth/token/lookup-self", nil, &out)
	if isStatus(err, http.StatusForbidden, "") {
		c.log.Warn("vault: cannot look up the configured token (auth/token/lookup-self denied); it will not be renewed")
		return lease{}, nil
	}
	if err != nil {
		return lease{}, fmt.Errorf("vault: looking up the token: %w", err)
	}
	inc := out.Data.CreationTTL
	if inc <= 0 {
		inc = out.Data.TTL
	}
	return lease{obtained: start, ttl: time.Duration(out.Data.TTL) * time.Second, renewable: out.Data.Renewable, increment: time.Duration(inc) * time.Second}, nil
}

// renew extends the current token by l.increment.
func (c *conn) renew(ctx context.Context, l lease) (lease, error) {
	start := time.Now()
	var out authAnswer
	body := map[string]int64{"increment": int64(l.increment / time.Second)}
	payload, _ := json.Marshal(body)
	if err := c.attempt(ctx, c.client, http.MethodPut, "auth/token/renew-self", payload, &out); err != nil {
		return l, fmt.Errorf("vault: token renewal failed: %w", err)
	}
	if out.Auth == nil {
		return l, fmt.Errorf("vault: token renewal returned no lease")
	}
	c.renewals.Add(1)
	ttl := time.Duration(out.Auth.LeaseDuration) * time.Second
	return lease{obtained: start, ttl: ttl, renewable: out.Auth.Renewable, increment: l.increment, atMax: ttl < l.increment}, nil
}

// startMaintenance runs the renewal loop until close.
func (c *conn) startMaintenance(l lease) {
	c.current.Store(&l)
	c.started.Store(true)
	go c.maintain(l)
}

func (c *conn) maintain(l lease) {
	defer close(c.done)
	failures := 0
	warned := false
	for {
		var timer <-chan time.Time
		switch {
		case l.ttl <= 0:
			// Never expires: nothing to do (a re-login may still send a lease).
		case c.auth.Method != "approle" && (!l.renewable || l.atMax):
			if !warned {
				warned = true
				c.log.Warn("vault: the configured token cannot be renewed further; reconfigure a new token before it expires",
					"expires", l.obtained.Add(l.ttl).UTC().Format(time.RFC3339))
			}
		case l.atMax: // AppRole: replace the token now
			timer = time.After(0)
		case failures > 0:
			timer = time.After(min(time.Second<<min(failures-1, 5), maxRefreshBackof))
		default:
			timer = time.After(max(time.Until(l.refreshAt()), minRefreshWait))
		}
		select {
		case <-c.stop:
			return
		case nl := <-c.leases:
			l, failures = nl, 0
			c.current.Store(&l)
			continue
		case <-timer:
		}
		nl, err := c.refresh(l)
		if err != nil {
			failures++
			c.log.Warn("vault: keeping the token alive failed; retrying", "auth_method", c.auth.Method, "failures", failures, "error", err)
			continue
		}
		l, failures = nl, 0
		c.current.Store(&l)
	}
}

// TokenTTL is how long the token in force has left; ok is false for a
// token that never expires (or before the first login).
func (c *conn) TokenTTL() (time.Duration, bool) {
	l := c.current.Load()
	if l == nil || l.ttl <= 0 {
		return 0, false
	}
	return max(time.Until(l.obtained.Add(l.ttl)), 0), true
}

// refresh renews the token, or logs in again (AppRole) when it cannot be
// renewed any more or the renewal failed.
func (c *conn) refresh(l lease) (lease, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	c.authMu.Lock()
	defer c.authMu.Unlock()
	var renewErr error
	if l.renewable && !l.atMax {
		nl, err := c.renew(ctx, l)
		if err == nil {
			return nl, nil
		}
		renewErr = err
	}
	if c.auth.Method != "approle" {
		return l, renewErr
	}
	nl, err := c.loginAppRole(ctx)
	if err != nil {
		return l, err
	}
	return nl, nil
}

// reauth logs in again after a request was refused with the token used,
// unless another caller already replaced that token. Vault answers a
// policy denial and a dead token alike (403), so forced logins are spaced
// by reauthInterval: a missing capability must not become a login storm
// (each login may spend a use of the secret id).
func (c *conn) reauth(ctx context.Context, used string) error {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	if c.client.Token() != used {
		return nil
	}
	if !c.lastReauth.IsZero() && time.Since(c.lastReauth) < reauthInterval {
		return errors.New("vault: re-login skipped (one was done recently)")
	}
	c.lastReauth = time.Now()
	l, err := c.loginAppRole(ctx)
	if err != nil {
		return err
	}
	c.reauths.Add(1)
	select {
	case <-c.leases:
	default:
	}
	c.leases <- l
	return nil
}
