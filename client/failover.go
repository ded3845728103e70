package client

import (
	"fmt"
	"net/url"
	"strings"
)

// Several endpoints (package documentation, "Several endpoints"): the
// client sends every request to the endpoint in use, the first one to
// begin with. When a call that may be repeated (see "Retries") fails there
// with a transport error or 503, or any call fails to connect at all,
// the client moves to the next endpoint, for this call and every later
// one, and sends the call there at once; each endpoint is tried once
// before the backoff of the retry policy applies, then the round starts
// again from the endpoint in use.

// parseEndpoints reads one endpoint or several separated by commas
// (spaces around them ignored, empty ones dropped).
func parseEndpoints(s string) ([]string, error) {
	var out []string
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		u, err := url.Parse(e)
		if err != nil {
			return nil, fmt.Errorf("keyward: invalid endpoint: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("keyward: invalid endpoint %q: want http(s)://host[:port]", e)
		}
		if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("keyward: invalid endpoint %q: no query, fragment or user info allowed", e)
		}
		out = append(out, u.Scheme+"://"+u.Host+strings.TrimRight(u.EscapedPath(), "/"))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("keyward: invalid endpoint %q: want http(s)://host[:port]", s)
	}
	return out, nil
}

// Endpoints returns the endpoints the client was made with, the one in
// use first.
func (c *Client) Endpoints() []string {
	n := len(c.endpoints)
	cur := c.endpointInUse()
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, c.endpoints[(cur+i)%n])
	}
	return out
}

func (c *Client) endpointInUse() int { return int(c.cur.Load()) }

// moveOn makes the endpoint after ep the one in use, unless another call
// moved on from ep already.
func (c *Client) moveOn(ep int) {
	c.cur.CompareAndSwap(int32(ep), int32((ep+1)%len(c.endpoints)))
}
