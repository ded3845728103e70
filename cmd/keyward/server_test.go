package main

import (
	"io"
	"strings"
	"testing"
)

// TestBoundsFlags: the flags of the bounds on unauthenticated work, from
// the command line and the environment, their defaults and their checks.
func TestBoundsFlags(t *testing.T) {
	f, err := parseServerFlags(nil, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f.allowUnsignedPayload || f.maxConnections != 1024 || f.maxBodyMemoryMiB != 64 {
		t.Errorf("defaults: unsigned %v, connections %d, body memory %d MiB", f.allowUnsignedPayload, f.maxConnections, f.maxBodyMemoryMiB)
	}
	env := []string{"KEYWARD_ALLOW_UNSIGNED_PAYLOAD=true", "KEYWARD_MAX_CONNECTIONS=10", "KEYWARD_MAX_BODY_MEMORY=3"}
	if f, err = parseServerFlags(nil, env, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !f.allowUnsignedPayload || f.maxConnections != 10 || f.maxBodyMemoryMiB != 3 {
		t.Errorf("from the environment: %+v", f)
	}
	// The command line wins.
	if f, err = parseServerFlags([]string{"--allow-unsigned-payload=false", "--max-connections", "20", "--max-body-memory", "5"}, env, io.Discard); err != nil {
		t.Fatal(err)
	}
	if f.allowUnsignedPayload || f.maxConnections != 20 || f.maxBodyMemoryMiB != 5 {
		t.Errorf("flags over the environment: %+v", f)
	}
	for _, tc := range []struct {
		args, env []string
		want      string
	}{
		{[]string{"--max-connections", "0"}, nil, "--max-connections must be at least 1"},
		{[]string{"--max-body-memory", "0"}, nil, "--max-body-memory must be between 1 and"},
		{[]string{"--max-body-memory", "2000000"}, nil, "--max-body-memory must be between 1 and"},
		{nil, []string{"KEYWARD_MAX_CONNECTIONS=lots"}, "KEYWARD_MAX_CONNECTIONS: not an integer"},
		{nil, []string{"KEYWARD_MAX_BODY_MEMORY=1.5"}, "KEYWARD_MAX_BODY_MEMORY: not an integer"},
		{nil, []string{"KEYWARD_ALLOW_UNSIGNED_PAYLOAD=maybe"}, "KEYWARD_ALLOW_UNSIGNED_PAYLOAD: not a boolean"},
	} {
		if _, err := parseServerFlags(tc.args, tc.env, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: got %v, want %q", tc.args, tc.env, err, tc.want)
		}
	}
}
