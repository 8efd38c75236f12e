package activities

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// A poll that waits (a throttled read waiting out Retry-After, a push
// that retries) keeps heartbeating, so that Temporal does not take the
// worker for dead and restart the window.
func TestHeartbeatDuringKeepsAWaitingPollAlive(t *testing.T) {
	defer func(d time.Duration, f func(context.Context, ...any)) {
		heartbeatKeepAlive, recordHeartbeat = d, f
	}(heartbeatKeepAlive, recordHeartbeat)

	var beats atomic.Int32
	heartbeatKeepAlive = 10 * time.Millisecond
	recordHeartbeat = func(context.Context, ...any) { beats.Add(1) }

	s := &syncer{}
	s.heartbeatDuring(context.Background(), func() { time.Sleep(200 * time.Millisecond) })
	after := beats.Load()
	if after < 3 {
		t.Fatalf("%d heartbeats while the poll waited 200 ms at a 10 ms keep-alive, want several", after)
	}
	time.Sleep(50 * time.Millisecond)
	if n := beats.Load(); n != after {
		t.Fatalf("heartbeats went on after the poll returned: %d then %d", after, n)
	}
}
