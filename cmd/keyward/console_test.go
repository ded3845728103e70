package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestConsoleFlag(t *testing.T) {
	for _, tc := range []struct {
		args, env []string
		want      bool
	}{
		{nil, nil, true},
		{[]string{"--console=false"}, nil, false},
		{nil, []string{"KEYWARD_CONSOLE=false"}, false},
		{[]string{"--console=true"}, []string{"KEYWARD_CONSOLE=false"}, true},
	} {
		f, err := parseServerFlags(tc.args, parseEnv(tc.env), io.Discard)
		if err != nil || f.console != tc.want {
			t.Errorf("%v %v: console %v (%v), want %v", tc.args, tc.env, f.console, err, tc.want)
		}
	}
}

// The console takes /console/ and a GET of the bare root, nothing else:
// the API keeps every other path and method (POST / included).
func TestWithConsoleRouting(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-From", "api") })
	for _, tc := range []struct {
		on             bool
		method, target string
		from           string // "api", "console" or a redirect target
	}{
		{true, "GET", "/console/", "console"},
		{true, "GET", "/console/js/app.js", "console"},
		{true, "GET", "/", "redirect:/console/"},
		{true, "HEAD", "/", "redirect:/console/"},
		{true, "POST", "/", "api"},
		{true, "GET", "/rustfs/admin/v3/kms/status", "api"},
		{true, "GET", "/metrics", "api"},
		{true, "GET", "/consoles", "api"},
		{true, "GET", "/console", "redirect:/console/"},
		{true, "POST", "/console", "api"},
		{true, "GET", "/console/../rustfs/admin/v3/kms/status", "console"}, // not a console file: 404 there
		{false, "GET", "/console/", "api"},
		{false, "GET", "/", "api"},
		{false, "POST", "/", "api"},
	} {
		w := httptest.NewRecorder()
		withConsole(api, tc.on).ServeHTTP(w, httptest.NewRequest(tc.method, tc.target, nil))
		got := "console"
		switch {
		case w.Header().Get("X-From") == "api":
			got = "api"
		case w.Code == http.StatusFound:
			got = "redirect:" + w.Header().Get("Location")
		case w.Header().Get("Content-Security-Policy") == "":
			got = "?"
		}
		if got != tc.from {
			t.Errorf("console %v, %s %s: served by %s, want %s", tc.on, tc.method, tc.target, got, tc.from)
		}
	}
}

// BenchmarkAPIBehindConsole measures what the console's routing adds to
// an API request (compare with console off).
func BenchmarkAPIBehindConsole(b *testing.B) {
	api := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	r := httptest.NewRequest("POST", "/rustfs/admin/v3/kms/generate-data-key", nil)
	w := httptest.NewRecorder()
	for _, on := range []bool{false, true} {
		h := withConsole(api, on)
		name := "console=off"
		if on {
			name = "console=on"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}
