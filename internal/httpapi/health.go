package httpapi

import (
	"context"
	"net/http"
	"time"
)

// live answers while the process serves HTTP.
func (s *Server) live(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Request-Id", s.newRequestID())
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// ready answers 200 only while the KMS service runs and its backend answers.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Request-Id", s.newRequestID())
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := s.opts.Manager.Ready(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unready"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// metrics serves the Prometheus scrape behind SigV4 (--metrics-auth).
func (s *Server) metrics(c *call) error {
	s.opts.Metrics.Handler().ServeHTTP(c.w, c.r)
	return nil
}
