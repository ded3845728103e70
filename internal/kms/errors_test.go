package kms

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestWithPrivateCause(t *testing.T) {
	cause := fmt.Errorf("local: key file /srv/keys/a.key: bad magic: %w", ErrCorrupt)
	err := fmt.Errorf("destroy: %w", WithPrivateCause(ErrConflict, `key "a" cannot be opened`, cause))
	if !errors.Is(err, ErrConflict) || !errors.Is(err, ErrCorrupt) {
		t.Errorf("errors.Is lost the kind or the cause: %v", err)
	}
	if strings.Contains(err.Error(), "/srv/keys") {
		t.Errorf("the message carries the private cause: %q", err)
	}
	if want := `destroy: conflict: key "a" cannot be opened`; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if PrivateDetail(err) != cause.Error() {
		t.Errorf("PrivateDetail = %q", PrivateDetail(err))
	}
	if PrivateDetail(ErrConflict) != "" {
		t.Error("PrivateDetail of a plain error is not empty")
	}
}
