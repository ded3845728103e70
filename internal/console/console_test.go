package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// Every answer, errors included, carries the security headers.
func TestHeaders(t *testing.T) {
	h := New()
	for _, tc := range []struct {
		method, target string
		status         int
	}{
		{"GET", "/console/", 200},
		{"HEAD", "/console/", 200},
		{"GET", "/console/index.html", 200},
		{"GET", "/console/js/app.js", 200},
		{"GET", "/console/style.css", 200},
		{"GET", "/console/js/", 404},
		{"GET", "/console/nope.js", 404},
		{"GET", "/console/js/../index.html", 404}, // not cleaned here: the mux redirects such paths
		{"GET", "/console", 404},
		{"POST", "/console/", 405},
		{"OPTIONS", "/console/", 405},
		{"PUT", "/console/js/app.js", 405},
	} {
		w := get(t, h, tc.method, tc.target)
		if w.Code != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.target, w.Code, tc.status)
		}
		for k, v := range headers {
			if got := w.Header().Get(k); got != v {
				t.Errorf("%s %s: %s = %q, want %q", tc.method, tc.target, k, got, v)
			}
		}
		for k := range w.Header() {
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				t.Errorf("%s %s: CORS header %s opens the console to other origins", tc.method, tc.target, k)
			}
		}
		if tc.status == 405 && w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow = %q", tc.method, tc.target, w.Header().Get("Allow"))
		}
	}
}

// The policy forbids what the console must never need.
func TestContentSecurityPolicy(t *testing.T) {
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
		"frame-ancestors 'none'", "form-action 'none'", "base-uri 'none'", "object-src 'none'", "require-trusted-types-for 'script'"} {
		if !strings.Contains(ContentSecurityPolicy, want) {
			t.Errorf("CSP lacks %q", want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "unsafe-hashes", "data:", "blob:", "*", "http:", "https:"} {
		if strings.Contains(ContentSecurityPolicy, bad) {
			t.Errorf("CSP allows %q", bad)
		}
	}
}

func TestContentTypesAndRevalidation(t *testing.T) {
	h := New()
	for _, name := range h.Names() {
		target := Path + name
		w := get(t, h, "GET", target)
		want := contentTypes[path.Ext(name)]
		if name == "" {
			want = contentTypes[".html"]
		}
		if got := w.Header().Get("Content-Type"); got != want {
			t.Errorf("%s: Content-Type %q, want %q", target, got, want)
		}
		etag := w.Header().Get("ETag")
		if etag == "" {
			t.Errorf("%s: no ETag", target)
			continue
		}
		if w2 := get(t, h, "GET", target, "If-None-Match", etag); w2.Code != http.StatusNotModified || w2.Body.Len() != 0 {
			t.Errorf("%s with its ETag: %d (%d bytes), want 304 and no body", target, w2.Code, w2.Body.Len())
		}
	}
	if w := get(t, h, "HEAD", "/console/"); w.Body.Len() != 0 || w.Header().Get("Content-Length") == "0" {
		t.Errorf("HEAD: %d body bytes, Content-Length %q", w.Body.Len(), w.Header().Get("Content-Length"))
	}
}

// Only the listed types are served: a stray file (a source map, notes)
// embedded by mistake is not.
func TestOnlyKnownTypesServed(t *testing.T) {
	h, err := newHandler(fstest.MapFS{
		"a/index.html": {Data: []byte("<!doctype html>")},
		"a/x.js":       {Data: []byte("export {}")},
		"a/x.js.map":   {Data: []byte("{}")},
		"a/notes.md":   {Data: []byte("secret plans")},
	}, "a")
	if err != nil {
		t.Fatal(err)
	}
	got := h.Names()
	slices.Sort(got)
	if want := []string{"", "index.html", "x.js"}; !slices.Equal(got, want) {
		t.Errorf("served %q, want %q", got, want)
	}
}

var (
	importRE      = regexp.MustCompile(`(?m)^\s*import\s[^'"]*['"]([^'"]+)['"]`)
	assetRefRE    = regexp.MustCompile(`(?:src|href)="([^"#:]+)"`)
	inlineStyleRE = regexp.MustCompile(`(?i)\sstyle\s*=|<style`)
	inlineEventRE = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	// lineCommentRE matches whole-line comments, which may name what the
	// code must not use.
	lineCommentRE = regexp.MustCompile(`(?m)^\s*//.*$`)
)

// The assets hold no inline code or style (the CSP would block them),
// every module and asset they name exists, and the scripts use none of
// the APIs the console's security rests on not using: HTML sinks (the
// CSP's Trusted Types would throw), eval, and any browser storage.
func TestAssetsRules(t *testing.T) {
	names := map[string]bool{}
	fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names[strings.TrimPrefix(p, "assets/")] = true
		}
		return err
	})
	idx, _ := fs.ReadFile(assets, "assets/index.html")
	html := string(idx)
	if strings.Contains(html, "<script>") || regexp.MustCompile(`<script(?:\s+type="module")?>`).MatchString(html) {
		t.Error("index.html has an inline script")
	}
	if inlineStyleRE.MatchString(html) || inlineEventRE.MatchString(html) {
		t.Error("index.html has an inline style or event handler")
	}
	for _, m := range assetRefRE.FindAllStringSubmatch(html, -1) {
		if !names[m[1]] {
			t.Errorf("index.html names %q, which is not embedded", m[1])
		}
	}
	forbidden := []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
		"localStorage", "sessionStorage", "indexedDB", "document.cookie", "setAttribute('style'", "caches.open", "serviceWorker"}
	for name := range names {
		if !strings.HasSuffix(name, ".js") {
			if _, ok := contentTypes[path.Ext(name)]; !ok {
				t.Errorf("%s: an asset of a type the handler does not serve", name)
			}
			continue
		}
		b, _ := fs.ReadFile(assets, "assets/"+name)
		src := lineCommentRE.ReplaceAllString(string(b), "")
		for _, f := range forbidden {
			if strings.Contains(src, f) {
				t.Errorf("%s uses %s", name, f)
			}
		}
		for _, m := range importRE.FindAllStringSubmatch(src, -1) {
			target := path.Join(path.Dir(name), m[1])
			if !strings.HasPrefix(m[1], ".") || !names[target] {
				t.Errorf("%s imports %q: not a relative module of the console", name, m[1])
			}
		}
	}
}

// FuzzPath: whatever the path, the handler answers with one of its
// statuses and only ever an embedded asset's bytes.
func FuzzPath(f *testing.F) {
	h := New()
	bodies := map[string]bool{}
	for _, a := range h.files {
		bodies[string(a.body)] = true
	}
	for _, s := range []string{"/console/", "/console/js/app.js", "/console/../x", "/console/%2e%2e/", "/console/js/", "//console/", "/console/\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path = p
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case 200:
			if !bodies[w.Body.String()] {
				t.Fatalf("%q: served bytes that are not an asset", p)
			}
		case 404:
		default:
			t.Fatalf("%q: status %d", p, w.Code)
		}
		if w.Header().Get("Content-Security-Policy") != ContentSecurityPolicy {
			t.Fatalf("%q: no CSP", p)
		}
	})
}
