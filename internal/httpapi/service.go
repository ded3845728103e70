package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/lifecycle"
)

// Service lifecycle routes (docs/api.md, "Service lifecycle").
func (s *Server) serviceRoutes() []*route {
	const slow = 60 * time.Second // start may derive a KEK (Argon2id) and reach a backend
	return []*route{
		{method: "POST", path: "/kms/configure", action: "kms:Configure", maxBody: MaxBody, timeout: slow, handle: s.configure},
		{method: "POST", path: "/kms/reconfigure", action: "kms:Configure", maxBody: MaxBody, timeout: slow, handle: s.reconfigure},
		{method: "POST", path: "/kms/start", action: "kms:ServiceControl", maxBody: MaxBody, timeout: slow, handle: s.start},
		{method: "POST", path: "/kms/stop", action: "kms:ServiceControl", maxBody: MaxBody, timeout: slow, handle: s.stop},
		{method: "GET", path: "/kms/status", action: "kms:ServiceControl", maxBody: 0, timeout: 10 * time.Second, handle: s.status},
		{method: "GET", path: "/kms/service-status", action: "kms:ServiceControl", maxBody: 0, timeout: 10 * time.Second, handle: s.status},
		{method: "GET", path: "/kms/config", action: "kms:Configure", maxBody: 0, timeout: 10 * time.Second, handle: s.config},
		{method: "POST", path: "/kms/clear-cache", action: "kms:ClearCache", maxBody: MaxBody, timeout: 10 * time.Second, handle: s.clearCache},
	}
}

// lifecycleResponse is the configure/start/stop answer.
type lifecycleResponse struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

func (s *Server) lifecycleOK(c *call, message string) error {
	status, _ := s.opts.Manager.State()
	writeJSON(c.w, http.StatusOK, lifecycleResponse{Success: true, Message: message, Status: status})
	return nil
}

func (s *Server) configure(c *call) error {
	req, err := config.ParseRequest(c.body)
	if err != nil {
		return err
	}
	if err := s.opts.Manager.Configure(c.ctx, req); err != nil {
		return err
	}
	return s.lifecycleOK(c, "KMS configured successfully")
}

func (s *Server) reconfigure(c *call) error {
	req, err := config.ParseRequest(c.body)
	if err != nil {
		return err
	}
	if err := s.opts.Manager.Reconfigure(c.ctx, req); err != nil {
		return err
	}
	return s.lifecycleOK(c, "KMS reconfigured successfully")
}

// start accepts an empty body, {"force": true} (RustFS) to rebuild a
// running service in place, or the secrets a service started with
// --no-persist-secrets waits for ({"master_key": "..."}, {"token": "..."},
// {"secret_id": "..."}; the body is wiped after the call).
func (s *Server) start(c *call) error {
	req, err := config.ParseStartRequest(c.body)
	if err != nil {
		return err
	}
	if status, _ := s.opts.Manager.State(); req.Force && req.Secrets.Empty() && status == lifecycle.StatusRunning {
		if err := s.opts.Manager.Reconfigure(c.ctx, &config.Request{}); err != nil {
			return err
		}
		return s.lifecycleOK(c, "KMS service restarted successfully")
	}
	if err := s.opts.Manager.StartWith(c.ctx, req.Secrets); err != nil {
		return err
	}
	return s.lifecycleOK(c, "KMS service started successfully")
}

func (s *Server) stop(c *call) error {
	if err := s.opts.Manager.Stop(c.ctx); err != nil {
		return err
	}
	return s.lifecycleOK(c, "KMS service stopped successfully")
}

// statusResponse is GET /kms/status (docs/api.md; error only while Error
// and the names of the secrets a sealed service waits for).
type statusResponse struct {
	Status          string          `json:"status"`
	Error           string          `json:"error,omitempty"`
	BackendType     *string         `json:"backend_type"`
	Healthy         *bool           `json:"healthy"`
	ConfigSummary   *config.Summary `json:"config_summary"`
	SecretsRequired []string        `json:"secrets_required,omitempty"`
}

func (s *Server) status(c *call) error {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	st := s.opts.Manager.Status(ctx)
	resp := statusResponse{Status: st.Status, Error: st.ErrorMsg, Healthy: st.Healthy, SecretsRequired: st.SecretsRequired}
	if st.Config != nil {
		bt := st.Config.BackendType
		sum := st.Config.Summary()
		resp.BackendType, resp.ConfigSummary = &bt, &sum
	}
	writeJSON(c.w, http.StatusOK, resp)
	return nil
}

func (s *Server) config(c *call) error {
	_, cfg := s.opts.Manager.State()
	if cfg == nil {
		return fmt.Errorf("%w: the KMS service is not configured", kms.ErrUnavailable)
	}
	writeJSON(c.w, http.StatusOK, cfg.View())
	return nil
}

func (s *Server) clearCache(c *call) error {
	if err := s.opts.Manager.ClearCache(); err != nil {
		return err
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}
