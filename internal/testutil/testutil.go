// Package testutil holds helpers shared by OneSync's tests.
package testutil

import (
	"os"
	"testing"
	"time"
)

// RequireAll reports whether optional test suites must run: .ci/run sets
// ONESYNC_REQUIRE_ALL=1 so that a missing component fails instead of
// skipping silently.
func RequireAll() bool {
	return os.Getenv("ONESYNC_REQUIRE_ALL") == "1"
}

// RequireOrSkip skips the test with reason when ok is false, or fails it
// when ONESYNC_REQUIRE_ALL=1 asks for every suite to run.
func RequireOrSkip(t testing.TB, ok bool, reason string) {
	t.Helper()
	if ok {
		return
	}
	if RequireAll() {
		t.Fatalf("required component missing (ONESYNC_REQUIRE_ALL=1): %s", reason)
	}
	t.Skip(reason)
}

// Eventually polls cond every 50 ms until it returns nil, or fails the
// test once within has passed, with what was awaited and the last error.
func Eventually(t testing.TB, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s: %v", within, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
