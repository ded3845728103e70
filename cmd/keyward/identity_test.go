package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIdentityCommand(t *testing.T) {
	const key, id = "kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs", "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6"
	run := func(stdin string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := runIdentity(args, strings.NewReader(stdin), &out, &errOut)
		return out.String(), err
	}
	if out, err := run("", "of", key); err != nil || out != id+"\n" {
		t.Errorf("of KEY: %q %v", out, err)
	}
	if out, err := run(key+"\n", "of", "-"); err != nil || out != id+"\n" {
		t.Errorf("of - : %q %v", out, err)
	}
	dir := t.TempDir()
	keyFile, certFile := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.pem")
	out, err := run("", "new", "--key", keyFile, "--cert", certFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	apiKey, _ := strings.CutPrefix(lines[0], "API key:  ")
	newID, _ := strings.CutPrefix(lines[1], "Identity: ")
	if got, err := run("", "of", apiKey); err != nil || got != newID+"\n" {
		t.Errorf("the new API key's identity: %q %v, printed %s", got, err, newID)
	}
	if got, err := run("", "of", certFile); err != nil || got != newID+"\n" {
		t.Errorf("the new certificate's identity: %q %v, printed %s", got, err, newID)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", fi.Mode(), err)
	}
	if _, err := run("", "new", "--key", keyFile, "--cert", certFile); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("overwrote without --force: %v", err)
	}
	if _, err := run("", "new", "--key", keyFile); err == nil {
		t.Error("--key without --cert accepted")
	}
	for _, bad := range []string{"kes:v1:nope", filepath.Join(dir, "missing"), keyFile} {
		if _, err := run("", "of", bad); err == nil {
			t.Errorf("of %s: no error", bad)
		} else if strings.Contains(err.Error(), "AGaV6") {
			t.Errorf("error quotes a key: %v", err)
		}
	}
}
