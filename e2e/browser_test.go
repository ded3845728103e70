package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward/internal/testenv"
)

// Browser tests drive Debian's Chromium (headless) with chromedp, against
// the real binary. KEYWARD_CHROMIUM names another Chromium-based browser.

// stepTimeout bounds one browser step (an action, or waiting for the page
// to show something).
const stepTimeout = 30 * time.Second

// chromiumPath finds the browser, or stops the test (see testenv.Missing).
func chromiumPath(t testing.TB) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser"}
	if p := os.Getenv("KEYWARD_CHROMIUM"); p != "" {
		names = []string{p}
	}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(t, "chromium", "apt-get install chromium (.ci/run installs it), or set KEYWARD_CHROMIUM")
	return ""
}

// browser is one headless Chromium process with its own profile.
type browser struct {
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// Start the browser now, with a context that has no deadline (a
	// deadline on the first call would bound the browser's whole life).
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return &browser{ctx: ctx}
}

// tab is one browser tab: its own page, JavaScript state and exceptions.
type tab struct {
	t    *testing.T
	ctx  context.Context
	mu   sync.Mutex
	errs []string // uncaught exceptions of the page
}

func (b *browser) tab(t *testing.T) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx}
	// Open the tab with a context without deadline (see newBrowser).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	tb.do(chromedp.EmulateViewport(1280, 800))
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			msg := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
			tb.mu.Lock()
			tb.errs = append(tb.errs, msg)
			tb.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	return tb
}

// exceptions returns the page's uncaught exceptions so far.
func (tb *tab) exceptions() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.errs...)
}

func (tb *tab) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(tb.ctx, stepTimeout)
}

// do runs browser actions, failing the test on an error.
func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := tb.step()
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("browser: %v\npage: %s", err, tb.pageText())
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) in the page.
func evalIn[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := tb.step()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// pageText is the visible text of the page, for failure messages.
func (tb *tab) pageText() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 3*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
	return tail(s, 3000)
}

// until waits for a JavaScript condition to hold.
func (tb *tab) until(what, cond string) {
	tb.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		ctx, cancel := tb.step()
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf("!!(%s)", cond)))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			tb.t.Fatalf("waited %s for %s (%s; last error %v)\npage:\n%s\nexceptions: %q", stepTimeout, what, cond, err, tb.pageText(), tb.exceptions())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// untilText waits until the element sel exists and its text contains
// want; it returns that text.
func (tb *tab) untilText(sel, want string) string {
	tb.t.Helper()
	q := jsString(sel)
	tb.until(fmt.Sprintf("%s to show %q", sel, want), fmt.Sprintf("document.querySelector(%s) && document.querySelector(%s).textContent.includes(%s)", q, q, jsString(want)))
	return evalIn[string](tb, fmt.Sprintf("document.querySelector(%s).textContent", q))
}

// fill types text into a field, as a person would.
func (tb *tab) fill(sel, text string) {
	tb.t.Helper()
	tb.do(chromedp.WaitVisible(sel))
	evalIn[bool](tb, fmt.Sprintf("(() => { const el = document.querySelector(%s); el.value = ''; el.focus(); return true })()", jsString(sel)))
	tb.do(chromedp.SendKeys(sel, text))
}

// choose selects an option of a <select> and fires its change event.
func (tb *tab) choose(sel, value string) {
	tb.t.Helper()
	tb.do(chromedp.WaitVisible(sel))
	evalIn[bool](tb, fmt.Sprintf(`(() => { const el = document.querySelector(%s); el.value = %s;
		el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); return true })()`,
		jsString(sel), jsString(value)))
}

func (tb *tab) click(sel string) {
	tb.t.Helper()
	tb.do(chromedp.WaitVisible(sel), chromedp.Click(sel))
}

// open loads a console page (hash route) and waits for its heading.
func (tb *tab) open(base, hash, heading string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(base + "/console/" + hash))
	tb.untilText("main h1", heading)
}

// screenshot saves the viewport as dir/name.png.
func (tb *tab) screenshot(dir, name string) {
	tb.t.Helper()
	ctx, cancel := tb.step()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "\u2028", `\u2028`, "\u2029", `\u2029`)
	return "'" + r.Replace(s) + "'"
}
