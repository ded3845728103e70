package main

import (
	"net/http"

	"github.com/keyward/keyward/internal/console"
)

// withConsole puts the web console (docs/console.md) in front of the
// admin API when on: /console/ serves its assets and a browser's GET of
// the bare root is sent there, so that opening the server's address shows
// it. Every other request, POST / included, goes to api as before.
func withConsole(api http.Handler, on bool) http.Handler {
	if !on {
		return api
	}
	mux := http.NewServeMux()
	mux.Handle(console.Path, console.New())
	mux.Handle("GET /{$}", http.RedirectHandler(console.Path, http.StatusFound))
	mux.Handle("/", api)
	return mux
}
