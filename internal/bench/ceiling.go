package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/sigv4"
)

// The ceiling is what a Go net/http server can do on this machine at best:
// a handler that reads the body and answers a constant small JSON body.
// Keyward's throughput is read as a share of it, so it is measured the way
// Keyward is: in a process of its own (Options.CeilingCommand), sent the
// very request bytes a Keyward generate-data-key carries (the same path,
// body and SigV4 headers, which it does not check). What is left between
// the two is then SigV4 verification, JSON and the crypto. An in-process
// ceiling shares the load generator's scheduler and garbage collector and
// skips the cross-process handoffs, so it is not comparable; it remains
// for tests and for embedding the package.

// CeilingHandler reads the body and answers a constant small JSON body.
func CeilingHandler(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"ok":true}`))
}

// ServeCeiling serves CeilingHandler on ln until ctx ends, after writing
// its base URL and a newline to announce (what a ceiling child process
// prints for its parent).
func ServeCeiling(ctx context.Context, ln net.Listener, announce io.Writer) error {
	srv := &http.Server{Handler: http.HandlerFunc(CeilingHandler), ReadHeaderTimeout: 10 * time.Second}
	if _, err := fmt.Fprintf(announce, "http://%s/\n", ln.Addr()); err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type ceilingTarget struct {
	command []string // empty: serve in this process
	signer  *sigv4.Signer
	now     func() time.Time
	log     io.Writer

	stop  context.CancelFunc // the in-process server
	child *exec.Cmd
	stdin io.Closer
	url   string
}

func (c *ceilingTarget) name() string { return "ceiling" }

func (c *ceilingTarget) setup(ctx context.Context) error {
	if len(c.command) == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		var sctx context.Context
		sctx, c.stop = context.WithCancel(context.Background())
		c.url = "http://" + ln.Addr().String() + "/"
		go ServeCeiling(sctx, ln, io.Discard)
		fmt.Fprintf(c.log, "ceiling: trivial net/http handler in this process at %s\n", c.url)
		return nil
	}
	return c.startChild(ctx)
}

// startChild starts the ceiling process and reads the URL it announces.
// The child serves until its standard input closes, so it cannot outlive
// this process even when this one is killed.
func (c *ceilingTarget) startChild(ctx context.Context) error {
	cmd := exec.Command(c.command[0], c.command[1:]...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the ceiling process: %w", err)
	}
	c.child, c.stdin = cmd, stdin
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case u := <-line:
		if !strings.HasPrefix(u, "http://") {
			c.close()
			return fmt.Errorf("the ceiling process announced %q, not a URL (stderr: %s)", u, strings.TrimSpace(stderr.String()))
		}
		c.url = u
	case <-time.After(10 * time.Second):
		c.close()
		return errors.New("the ceiling process did not announce its address within 10s")
	case <-ctx.Done():
		c.close()
		return ctx.Err()
	}
	fmt.Fprintf(c.log, "ceiling: trivial net/http handler in its own process (pid %d) at %s\n", cmd.Process.Pid, c.url)
	return nil
}

func (c *ceilingTarget) close() {
	if c.stop != nil {
		c.stop()
	}
	if c.child != nil {
		c.stdin.Close()
		done := make(chan struct{})
		go func() { c.child.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			c.child.Process.Kill()
			<-done
		}
		c.child = nil
	}
}

func (c *ceilingTarget) plan(string) Plan {
	// Byte for byte the request a Keyward worker replays for "generate".
	body := mustJSON(map[string]any{"key_id": "bench-00000000", "key_spec": "AES_256", "encryption_context": benchContext})
	return Plan{Target: c.name(), Op: CeilingOp, NewRequester: func(context.Context, int) (Requester, error) {
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		return prepared(&template{method: "POST", url: c.url + "rustfs/admin/v3/kms/generate-data-key", body: body, base: h, signer: c.signer, now: c.now})
	}}
}
