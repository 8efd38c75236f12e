package sip

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/presence"
)

// heldDialog is the dialog state the fake server was last given for ext: the
// newest dialog-info body naming the extension. Refreshes and removals
// carry no body and change nothing a phone sees.
func heldDialog(t *testing.T, f *fakeServer, ext string) string {
	t.Helper()
	held := ""
	for _, r := range f.requests() {
		if r.event == eventDialog && r.body != "" &&
			containsEntity(r.body, "sip:"+ext+"@"+testDomain) {
			held = shownDialogState(t, r.body)
		}
	}
	return held
}

// dialogBodies counts the PUBLISHes with a dialog body for ext.
func dialogBodies(f *fakeServer, ext string) int {
	n := 0
	for _, r := range f.requests() {
		if r.event == eventDialog && containsEntity(r.body, "sip:"+ext+"@"+testDomain) {
			n++
		}
	}
	return n
}

// C13 as the field reports it, many times over and on several extensions at
// once: busy, available, busy within 100 ms while the server takes its
// time to answer. Every lamp ends red and no extension ever has two
// PUBLISHes in flight.
func TestCasesC13BusyAvailableBusyOnManyLines(t *testing.T) {
	f, _ := newFakeServer(t, UDP)
	f.setScript(func(int, fakeReq) answer {
		time.Sleep(15 * time.Millisecond) // a presence server that takes a moment
		return answer{code: 200}
	})
	p := newTestPublisher(t, Config{Server: f.addr})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const lines = 8
	var wg sync.WaitGroup
	errs := make(chan error, lines*3)
	for i := range lines {
		ext := fmt.Sprintf("60%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var calls sync.WaitGroup
			for j, s := range []presence.LineState{presence.Busy, presence.Available,
				presence.Busy} {
				calls.Add(1)
				u := pbx.Update{Extension: ext, State: s, Seq: int64(j + 1)}
				go func() {
					defer calls.Done()
					if err := p.Publish(ctx, u); err != nil && !errors.Is(err, pbx.ErrStale) {
						errs <- fmt.Errorf("%s %s: %w", ext, s, err)
					}
				}()
				time.Sleep(30 * time.Millisecond) // three changes within 100 ms
			}
			calls.Wait()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	for i := range lines {
		ext := fmt.Sprintf("60%d", i)
		if got := heldDialog(t, f, ext); got != dialogConfirmed {
			t.Errorf("%s: the server holds %q, want confirmed (the last state, busy)", ext, got)
		}
		l := lineOf(t, p, ext)
		if m := l.maxInFlight.Load(); m != 1 {
			t.Errorf("%s: %d PUBLISHes were in flight at once", ext, m)
		}
		if n := dialogBodies(f, ext); n > 3 {
			t.Errorf("%s: %d dialog PUBLISHes for 3 changes", ext, n)
		}
	}
}

// C13 with a long burst: a hundred random changes for one extension while
// its first PUBLISH is held by the server, issued from many goroutines with
// rising sequence numbers. The burst collapses into the newest state: at
// most one more dialog PUBLISH, one in flight at a time, and the server
// ends with the state of the highest sequence number.
func TestCasesC13LongBurstCollapsesToTheNewest(t *testing.T) {
	for round, seed := range []uint64{1, 2, 3, 4} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			f, _ := newFakeServer(t, TCP)
			gate := make(chan struct{})
			f.setGate(gate)
			p := newTestPublisher(t, Config{Server: f.addr, Transport: TCP})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ext := fmt.Sprintf("70%d", round)
			r := rand.New(rand.NewPCG(seed, 13))
			states := []presence.LineState{presence.Busy, presence.Available,
				presence.DoNotDisturb, presence.Away, presence.Offline}

			first := make(chan error, 1)
			go func() { first <- p.Publish(ctx, pbx.Update{Extension: ext, State: presence.Busy, Seq: 1}) }()
			f.waitRequests(1, 10*time.Second)

			const burst = 100
			want := make([]presence.LineState, burst+2)
			var wg sync.WaitGroup
			errs := make(chan error, burst)
			for seq := 2; seq <= burst+1; seq++ {
				s := states[r.IntN(len(states))]
				want[seq] = s
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := p.Publish(ctx, pbx.Update{Extension: ext, State: s, Seq: int64(seq)})
					if err != nil && !errors.Is(err, pbx.ErrStale) {
						errs <- err
					}
				}()
			}
			// Let every change reach the slot (or be refused as stale)
			// before the server answers the first PUBLISH.
			l := waitLine(t, p, ext)
			waitFor(t, 10*time.Second, "the burst in the slot", func() bool {
				p.mu.Lock()
				defer p.mu.Unlock()
				return l.seq == burst+1
			})
			close(gate)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("Publish: %v", err)
			}
			if err := <-first; err != nil {
				t.Fatalf("first Publish: %v", err)
			}

			last := want[burst+1]
			if got := heldDialog(t, f, ext); got != dialogState(last) {
				t.Errorf("server holds %q, want %q for the newest state %s", got,
					dialogState(last), last)
			}
			if n := dialogBodies(f, ext); n > 2 {
				t.Errorf("%d dialog PUBLISHes for a burst of %d, want at most 2", n, burst+1)
			}
			if m := l.maxInFlight.Load(); m != 1 {
				t.Errorf("%d PUBLISHes in flight at once", m)
			}
			p.mu.Lock()
			accepted := l.accepted
			p.mu.Unlock()
			if accepted != last {
				t.Errorf("publisher believes the server holds %s, want %s", accepted, last)
			}
		})
	}
}

// C14 for each state a line can be in when the server forgets it: the
// fresh PUBLISH after a 412 to a refresh carries the current state (red
// for busy and dnd, dark for the rest), and the refreshes after it carry
// the new ETags.
func TestCasesC14FreshPublishCarriesTheCurrentState(t *testing.T) {
	for i, s := range []presence.LineState{presence.Busy, presence.DoNotDisturb,
		presence.Available, presence.Away} {
		t.Run(string(s), func(t *testing.T) {
			t.Parallel()
			f, _ := newFakeServer(t, UDP)
			var mu sync.Mutex
			refused := 0
			f.setScript(func(n int, r fakeReq) answer {
				mu.Lock()
				defer mu.Unlock()
				// The server forgets the first publication it is asked to
				// refresh, once.
				if r.body == "" && r.ifMatch != "" && refused == 0 {
					refused = n
					return answer{code: 412}
				}
				return answer{code: 200, expires: 2}
			})
			p := newTestPublisher(t, Config{Server: f.addr})
			ext := fmt.Sprint("80", i)
			if s != presence.Busy {
				// Start from a busy period so that the line has a history.
				publish(t, p, ext, presence.Busy)
			}
			publish(t, p, ext, s)

			var reqs []fakeReq
			waitFor(t, 20*time.Second, "a 412 then two refreshes of the new ETag", func() bool {
				reqs = f.requests()
				mu.Lock()
				at := refused
				mu.Unlock()
				return at > 0 && len(reqs) >= at+3
			})
			mu.Lock()
			at := refused
			mu.Unlock()
			fresh := reqs[at] // the request right after the refused refresh
			if fresh.ifMatch != "" || fresh.body == "" {
				t.Fatalf("after the 412: %+v, want a fresh PUBLISH with a body", fresh)
			}
			if got := shownDialogState(t, fresh.body); got != dialogState(s) {
				t.Errorf("fresh PUBLISH shows %q, want %q for %s", got, dialogState(s), s)
			}
			// The fake grants etag-<n> to request n, a refresh included,
			// so each refresh names the tag of the answer before it.
			for k, r := range reqs[at+1 : at+3] {
				tag := fmt.Sprint("etag-", at+1+k)
				if r.ifMatch != tag || r.body != "" {
					t.Errorf("refresh %d after recovery = %+v, want SIP-If-Match %s, no body",
						k+1, r, tag)
				}
			}
		})
	}
}

// C14 when the fresh PUBLISH is refused too: no tight loop. The worker
// backs off, and within five seconds sends only a handful of requests.
func TestCasesC14RefusedFreshPublishDoesNotLoop(t *testing.T) {
	f, _ := newFakeServer(t, UDP)
	f.setScript(func(n int, r fakeReq) answer {
		if n == 1 {
			return answer{code: 200, expires: 1}
		}
		if r.ifMatch != "" {
			return answer{code: 412}
		}
		return answer{code: 500}
	})
	p := newTestPublisher(t, Config{Server: f.addr})
	publish(t, p, "901", presence.Busy)
	time.Sleep(5 * time.Second) // counting what a broken server receives, not waiting for it
	if n := len(f.requests()); n > 10 {
		t.Errorf("%d requests in 5 s to a server that refuses everything, want a backoff", n)
	}
}

// C15 over every state a line can show: on the sync's end ClearAll frees
// every line that is red or shows an activity (busy, dnd, away), also one
// whose busy PUBLISH is still in flight, and leaves available and offline
// lines alone. Afterwards the same extensions can be published again.
func TestCasesC15ClearAllFreesEveryLitLine(t *testing.T) {
	f, _ := newFakeServer(t, UDP)
	p := newTestPublisher(t, Config{Server: f.addr})
	start := map[string]presence.LineState{"1001": presence.Busy, "1002": presence.DoNotDisturb,
		"1003": presence.Away, "1004": presence.Available, "1005": presence.Offline}
	for ext, s := range start {
		publish(t, p, ext, s)
	}
	before := len(f.requests())

	// 1006 goes busy while the server holds its PUBLISH: ClearAll must
	// still leave it dark.
	gate := make(chan struct{})
	f.setGate(gate)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	busy := make(chan error, 1)
	go func() { busy <- p.Publish(ctx, pbx.Update{Extension: "1006", State: presence.Busy}) }()
	f.waitRequests(before+1, 10*time.Second)
	cleared := make(chan error, 1)
	go func() { cleared <- p.ClearAll(ctx) }()
	time.Sleep(50 * time.Millisecond) // let ClearAll queue its changes behind the held one
	close(gate)
	if err := <-busy; err != nil {
		t.Fatalf("busy 1006: %v", err)
	}
	if err := <-cleared; err != nil {
		t.Fatalf("ClearAll: %v", err)
	}

	for _, ext := range []string{"1001", "1002", "1003", "1004", "1005", "1006"} {
		if got := heldDialog(t, f, ext); got != dialogTerminated {
			t.Errorf("%s: the server holds %q after ClearAll, want terminated", ext, got)
		}
	}
	for _, ext := range []string{"1004", "1005"} {
		if n := dialogBodies(f, ext); n != 1 {
			t.Errorf("%s was %s: %d dialog PUBLISHes, want only its first", ext, start[ext], n)
		}
	}

	publish(t, p, "1001", presence.Busy)
	if got := heldDialog(t, f, "1001"); got != dialogConfirmed {
		t.Errorf("1001 after a new busy: %q, want confirmed", got)
	}
}

// C15 when the server refuses one clearing PUBLISH: ClearAll names that
// extension in its error and still clears every other one.
func TestCasesC15ClearAllReportsTheLineItCouldNotFree(t *testing.T) {
	f, _ := newFakeServer(t, UDP)
	p := newTestPublisher(t, Config{Server: f.addr})
	for _, ext := range []string{"1101", "1102", "1103"} {
		publish(t, p, ext, presence.Busy)
	}
	f.setScript(func(n int, r fakeReq) answer {
		if strings.Contains(r.body, "sip:1102@") {
			return answer{code: 503}
		}
		return answer{code: 200}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := p.ClearAll(ctx)
	if err == nil || !strings.Contains(err.Error(), "1102") {
		t.Fatalf("ClearAll = %v, want an error naming 1102", err)
	}
	for _, ext := range []string{"1101", "1103"} {
		if got := heldDialog(t, f, ext); got != dialogTerminated {
			t.Errorf("%s: %q, want terminated despite 1102's failure", ext, got)
		}
	}
}
