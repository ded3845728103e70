package main

import (
	"net/http"
	"strings"

	"github.com/keyward/keyward/internal/console"
)

// withConsole puts the web console (docs/console.md) in front of the
// admin API when on: /console/ serves its assets, and a browser's GET of
// /console or of the bare root is redirected there, so that opening the
// server's address shows it. Every other request, POST / included, goes
// to api as before. It is a prefix check rather than a second ServeMux so
// that API requests pay nothing for it (a few ns, no allocation).
func withConsole(api http.Handler, on bool) http.Handler {
	if !on {
		return api
	}
	c := console.New()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case strings.HasPrefix(p, console.Path):
			c.ServeHTTP(w, r)
		case (p == "/" || p == "/console") && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			http.Redirect(w, r, console.Path, http.StatusFound)
		default:
			api.ServeHTTP(w, r)
		}
	})
}
