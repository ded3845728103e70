// Package console serves Keyward's web console (docs/console.md): a
// static single-page application embedded in the binary. It holds no
// server-side logic and no privilege of its own: the browser signs every
// admin API call with the operator's own credentials (SigV4, WebCrypto),
// so the console can do exactly what that user's policies allow.
//
// What this package guarantees is how the assets are served: from the
// binary only, read-only (GET and HEAD), with a strict
// Content-Security-Policy (scripts and styles from the console's own
// origin only, no inline code, no framing, no native form submission,
// Trusted Types enforced) and the other headers that keep the page from
// being framed, sniffed or leaking its URL.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Path is where the console is served.
const Path = "/console/"

// assets are the console's files, served as they are (no build step).
//
//go:embed assets
var assets embed.FS

// ContentSecurityPolicy is sent with every console response.
//
//   - default-src 'none' and the explicit 'self' sources: the page loads
//     only its own scripts, styles, icon and API (connect-src).
//   - no 'unsafe-inline' or 'unsafe-eval': an injected <script> or
//     attribute handler does not run.
//   - require-trusted-types-for 'script' with no policy allowed: string
//     assignments to DOM sinks such as innerHTML throw, so markup is only
//     ever built with createElement and textContent.
//   - form-action 'none': the console never submits a form natively (its
//     forms are handled by script), so even a broken page cannot send the
//     secret key anywhere in a form submission.
//   - frame-ancestors 'none': no other page can frame the console
//     (clickjacking); base-uri 'none' and object-src 'none' close the
//     remaining ways to change where code comes from.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " +
	"object-src 'none'; require-trusted-types-for 'script'; trusted-types 'none'"

// headers are set on every console response, errors included.
var headers = map[string]string{
	"Content-Security-Policy":      ContentSecurityPolicy,
	"X-Frame-Options":              "DENY",
	"X-Content-Type-Options":       "nosniff",
	"Referrer-Policy":              "no-referrer",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
	"Permissions-Policy":           "camera=(), microphone=(), geolocation=(), payment=(), usb=(), clipboard-read=()",
	// The assets change with the binary: the browser may keep them but
	// must revalidate (cheap: an ETag match is a 304), so an upgrade
	// never runs old code against a new server.
	"Cache-Control": "no-cache",
}

// contentTypes are the only file types the console ships; a file of any
// other type is not served (and the package test fails).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".txt":  "text/plain; charset=utf-8",
}

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the console under Path.
type Handler struct {
	files map[string]asset // by name relative to Path; "" is index.html
	// modTime is the binary's build time as far as the assets know: zero,
	// so that only the ETag decides freshness.
	modTime time.Time
}

// New loads the embedded assets.
func New() *Handler {
	h, err := newHandler(assets, "assets")
	if err != nil {
		panic("console: embedded assets: " + err.Error()) // a build without its assets
	}
	return h
}

func newHandler(fsys fs.FS, root string) (*Handler, error) {
	h := &Handler{files: map[string]asset{}}
	err := fs.WalkDir(fsys, root, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return nil // not served
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		rel := strings.TrimPrefix(name, root+"/")
		h.files[rel] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if idx, ok := h.files["index.html"]; ok {
		h.files[""] = idx
	}
	return h, nil
}

// ServeHTTP serves one asset. Anything but GET and HEAD is 405; a name
// that is not an embedded asset (directories included) is 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range headers {
		w.Header().Set(k, v)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Path)
	a, found := h.files[name]
	if !ok || !found {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("ETag", a.etag)
	http.ServeContent(w, r, "", h.modTime, bytes.NewReader(a.body))
}

// Names lists the served asset names (for tests).
func (h *Handler) Names() []string {
	out := make([]string, 0, len(h.files))
	for n := range h.files {
		out = append(out, n)
	}
	return out
}
