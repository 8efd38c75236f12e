// Package testutil holds helpers shared by OneSync's tests.
package testutil

import (
	"os"
	"testing"
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
