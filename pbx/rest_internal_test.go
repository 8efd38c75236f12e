package pbx

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":     0,
		"7":    7 * time.Second,
		"-3":   0,
		"soon": 0,
		now.Add(30 * time.Second).Format(http.TimeFormat): 30 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
	}
	for in, want := range cases {
		if got := retryAfter(in, now); got != want {
			t.Errorf("Retry-After %q: got %v, want %v", in, got, want)
		}
	}
}

func TestBackoffGrowsWithinBounds(t *testing.T) {
	r := &REST{minBackoff: 100 * time.Millisecond, maxBackoff: time.Second}
	for attempt := range 8 {
		ceiling := min(100*time.Millisecond<<attempt, time.Second)
		for range 50 {
			d := r.backoff(attempt)
			if d < ceiling/2 || d > ceiling {
				t.Fatalf("attempt %d: backoff %v outside [%v, %v]", attempt, d, ceiling/2, ceiling)
			}
		}
	}
}
