package sip

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/setera/onesync/internal/testutil"
	"github.com/setera/onesync/pbx/sip/siptest"
)

// etagOf returns the SIP-ETag the line's worker holds for event.
func (l *line) etagOf(p *Publisher, event string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return l.etags[event]
}

// waitFor polls cond until it holds or d runs out.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, d, what, func() error {
		if !cond() {
			return errors.New("not yet")
		}
		return nil
	})
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func containsEntity(body, entity string) bool {
	return strings.Contains(body, `entity="`+entity+`"`)
}

func asStatus(err error, se **StatusError) bool {
	return errors.As(err, se)
}

func mustLast(t *testing.T, w *siptest.Watcher) siptest.Notify {
	t.Helper()
	n, ok := w.Last()
	if !ok {
		t.Fatal("no NOTIFY received")
	}
	return n
}
