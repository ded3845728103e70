package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
)

// Machine describes where the load generator runs.
type Machine struct {
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	NumCPU     int    `json:"num_cpu"`
	CPUModel   string `json:"cpu_model,omitempty"`
}

// ThisMachine returns the machine of this process.
func ThisMachine() Machine {
	return Machine{
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		NumCPU:     runtime.NumCPU(),
		CPUModel:   cpuModel(),
	}
}

// cpuModel reads the first "model name" of /proc/cpuinfo (Linux only).
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (m Machine) String() string {
	s := fmt.Sprintf("%s %s/%s, GOMAXPROCS=%d, NumCPU=%d", m.GoVersion, m.OS, m.Arch, m.GOMAXPROCS, m.NumCPU)
	if m.CPUModel != "" {
		s += ", " + m.CPUModel
	}
	return s
}

// WriteHeader writes the machine and the step settings above the table.
func WriteHeader(w io.Writer, m Machine, c Config) {
	step := c.Duration.String()
	if c.Requests > 0 {
		step = fmt.Sprintf("%d requests", c.Requests)
	}
	fmt.Fprintf(w, "keyward bench on %s\n", m)
	fmt.Fprintf(w, "each step: %s after a %s warm-up; req/s and latencies (ms) count successful requests\n\n", step, c.Warmup)
}

// WriteTable writes rows as an aligned table.
func WriteTable(w io.Writer, rows []Row) {
	const hdr = "%-8s %-9s %5s %10s %7s %10s %9s %9s %9s %9s\n"
	const line = "%-8s %-9s %5d %10d %7d %10.0f %9.2f %9.2f %9.2f %9.2f\n"
	fmt.Fprintf(w, hdr, "target", "op", "conc", "requests", "errors", "req/s", "p50", "p95", "p99", "max")
	for _, r := range rows {
		fmt.Fprintf(w, line, r.Target, r.Op, r.Concurrency, r.Requests, r.Errors, r.RPS, r.P50Ms, r.P95Ms, r.P99Ms, r.MaxMs)
	}
	for _, r := range rows {
		if r.Errors > 0 {
			fmt.Fprintf(w, "\n%s %s c=%d: %d errors %v; first: %s\n", r.Target, r.Op, r.Concurrency, r.Errors, r.ErrorsByStatus, r.FirstError)
		}
	}
}

// WriteJSON writes rows as an indented JSON array, latencies rounded to
// the microsecond and rates to 0.1 req/s.
func WriteJSON(w io.Writer, rows []Row) error {
	out := make([]Row, len(rows))
	for i, r := range rows {
		r.Seconds = round(r.Seconds, 1e3)
		r.RPS = round(r.RPS, 10)
		r.P50Ms, r.P95Ms, r.P99Ms = round(r.P50Ms, 1e3), round(r.P95Ms, 1e3), round(r.P99Ms, 1e3)
		r.MaxMs, r.MeanMs = round(r.MaxMs, 1e3), round(r.MeanMs, 1e3)
		out[i] = r
	}
	if out == nil {
		out = []Row{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func round(v, scale float64) float64 { return math.Round(v*scale) / scale }
