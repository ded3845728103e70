package bench

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestReadResponse(t *testing.T) {
	cases := []struct {
		name, method, in string
		status           int
		close            bool
		snippet, rest    string
		err              string
	}{
		{name: "content-length", in: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}NEXT", status: 200, rest: "NEXT"},
		{name: "no reason phrase", in: "HTTP/1.1 204\r\n\r\nNEXT", status: 204, rest: "NEXT"},
		{name: "error body kept", in: "HTTP/1.1 403 Forbidden\r\ncontent-length: 16\r\n\r\n{\"code\":\"Nope\"}xNEXT", status: 403, snippet: "{\"code\":\"Nope\"}x", rest: "NEXT"},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT", status: 200, rest: "NEXT"},
		{name: "chunked error body", in: "HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", status: 500, snippet: "abc"},
		{name: "connection close", in: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", status: 200, close: true},
		{name: "http/1.0 closes", in: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", status: 200, close: true},
		{name: "http/1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", status: 200},
		{name: "to the end", in: "HTTP/1.1 200 OK\r\n\r\nall of it", status: 200, close: true},
		{name: "HEAD has no body", method: "HEAD", in: "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nNEXT", status: 200, rest: "NEXT"},
		{name: "LF only", in: "HTTP/1.1 200 OK\nContent-Length: 2\n\nokNEXT", status: 200, rest: "NEXT"},
		{name: "long error body cut", in: "HTTP/1.1 400 Bad\r\nContent-Length: 400\r\n\r\n" + strings.Repeat("e", 400), status: 400, snippet: strings.Repeat("e", 300)},
		{name: "garbage", in: "SSH-2.0-OpenSSH\r\n\r\n", err: "malformed status line"},
		{name: "bad status", in: "HTTP/1.1 2x0 OK\r\n\r\n", err: "malformed status line"},
		{name: "bad length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", err: "bad Content-Length"},
		{name: "two lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", err: "bad Content-Length"},
		{name: "gzip", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", err: "unsupported Transfer-Encoding"},
		{name: "short body", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", err: "unexpected EOF"},
		{name: "bad chunk", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", err: "bad chunk size"},
		{name: "cut headers", in: "HTTP/1.1 200 OK\r\nContent-Len", err: "unexpected EOF"},
		{name: "header without colon", in: "HTTP/1.1 200 OK\r\nnonsense\r\n\r\n", err: "malformed header line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(c.in))
			method := c.method
			if method == "" {
				method = "POST"
			}
			status, closeConn, snippet, err := readResponse(br, method)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || status != c.status || closeConn != c.close || string(snippet) != c.snippet {
				t.Fatalf("got %d close=%v %q %v; want %d close=%v %q", status, closeConn, snippet, err, c.status, c.close, c.snippet)
			}
			if rest, _ := io.ReadAll(br); string(rest) != c.rest {
				t.Fatalf("left %q for the next response, want %q", rest, c.rest)
			}
		})
	}
}

// A 2xx answer costs no allocation.
func TestReadResponseAllocations(t *testing.T) {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Request-Id: 0123456789abcdef\r\nContent-Length: 11\r\n\r\n{\"ok\":true}")
	r := bytes.NewReader(resp)
	br := bufio.NewReader(r)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(resp)
		br.Reset(r)
		if status, _, _, err := readResponse(br, "POST"); err != nil || status != 200 {
			t.Fatal(status, err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.0f allocations per 2xx answer", allocs)
	}
}

// The parser agrees with net/http's wherever net/http accepts the input
// (it may refuse more: trailers-only bodies, odd encodings), never panics,
// and never returns more than 300 bytes of body.
func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Add([]byte("HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 500 x\r\nConnection: keep-alive\r\n\r\nbody"))
	f.Fuzz(func(t *testing.T, in []byte) {
		status, closeConn, snippet, err := readResponse(bufio.NewReader(bytes.NewReader(in)), "GET")
		if len(snippet) > 300 {
			t.Fatalf("snippet of %d bytes", len(snippet))
		}
		resp, herr := http.ReadResponse(bufio.NewReader(bytes.NewReader(in)), nil)
		if herr != nil || err != nil {
			return
		}
		body, berr := io.ReadAll(resp.Body)
		if berr != nil {
			return
		}
		if resp.StatusCode != status {
			t.Fatalf("status %d, net/http %d", status, resp.StatusCode)
		}
		if (status < 200 || status > 299) && !bytes.HasPrefix(body, snippet) {
			t.Fatalf("snippet %q is not the start of net/http's body %q", snippet, body)
		}
		_ = closeConn
	})
}
