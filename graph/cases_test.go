package graph_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/setera/onesync/graph"
)

// C5 widened: whatever else the callback carries, a non-empty error makes
// it a failure, with or without a tenant, in any parameter order, for
// every error value Entra documents and for values it does not.
func TestCasesC5AnErrorAlwaysWins(t *testing.T) {
	tenant := "5d1e6f3a-9b2c-4e7d-8a41-0c3b9f2e7d15"
	errs := []string{"access_denied", "consent_required", "permission_denied",
		"invalid_request", "server_error", "temporarily_unavailable", "unknown_new_error"}
	for _, e := range errs {
		for _, raw := range []string{
			"error=" + e + "&admin_consent=True&tenant=" + tenant + "&state=abc",
			"admin_consent=True&tenant=" + tenant + "&state=abc&error=" + e,
			"admin_consent=True&state=abc&error=" + e + "&error_description=AADSTS65004",
			"tenant=" + tenant + "&error=" + e + "&admin_consent=True&scope=x&state=abc",
		} {
			q, err := url.ParseQuery(raw)
			if err != nil {
				t.Fatal(err)
			}
			cb, err := graph.ParseConsentCallback(q)
			var ce *graph.ConsentError
			if !errors.As(err, &ce) {
				t.Errorf("%s: got grant %+v (err %v), want a *ConsentError", raw, cb, err)
				continue
			}
			if cb.Tenant != "" {
				t.Errorf("%s: a failure handed back tenant %q", raw, cb.Tenant)
			}
			if ce.Err != e {
				t.Errorf("%s: failure names error %q, want %q", raw, ce.Err, e)
			}
		}
	}
}

// C4: the exact callback of a Cancel, and the same with the description in
// other spellings Entra uses (trace lines after the code).
func TestCasesC4CancelIsCancelled(t *testing.T) {
	for _, desc := range []string{
		"AADSTS65004: User declined to consent to access the app.",
		"AADSTS65004: User declined to consent to access the app.\r\nTrace ID: 1\r\n" +
			"Correlation ID: 2\r\nTimestamp: 2026-03-02 09:00:00Z",
	} {
		q := url.Values{"error": {"access_denied"}, "error_description": {desc},
			"state": {"state-0123456789abcdef"}}
		_, err := graph.ParseConsentCallback(q)
		var ce *graph.ConsentError
		if !errors.As(err, &ce) || ce.Kind != graph.ConsentCancelled ||
			ce.Code != "AADSTS65004" || ce.State != "state-0123456789abcdef" {
			t.Errorf("%q: got %+v, want cancelled AADSTS65004 with the state", desc, ce)
		}
	}
}

// C6 at the parser: the tenant is a claim in any letter case (normalised
// so that one tenant has one spelling); a tenant that is not a GUID, or
// one with a suffix or prefix, is refused.
func TestCasesC6TenantClaimForm(t *testing.T) {
	lower := "5d1e6f3a-9b2c-4e7d-8a41-0c3b9f2e7d15"
	q := url.Values{"admin_consent": {"True"}, "tenant": {strings.ToUpper(lower)},
		"state": {"abc"}}
	cb, err := graph.ParseConsentCallback(q)
	if err != nil || cb.Tenant != lower {
		t.Fatalf("upper-case tenant: %+v, %v; want %s", cb, err, lower)
	}
	for _, bad := range []string{"", "common", "organizations", "contoso.onmicrosoft.com",
		lower + "x", " " + lower, lower + "/../x", "{" + lower + "}", "00000000-0000-0000-0000"} {
		q.Set("tenant", bad)
		if cb, err := graph.ParseConsentCallback(q); err == nil {
			t.Errorf("tenant %q accepted: %+v", bad, cb)
		}
	}
}

// C9 at the classifier: every status decides before any code, whatever
// code or message the body carries, and an error with no body at all is
// classified by its status too.
func TestCasesC9StatusDecidesBeforeCode(t *testing.T) {
	codes := []string{"", "BadRequest", "Forbidden", "ResourceNotFound", "TooManyRequests",
		"invalid_client", "InvalidAuthenticationToken", "generalException"}
	msgs := []string{"", "AADSTS700016: app gone", "AADSTS7000215: bad secret",
		"AADSTS65001: no consent"}
	want := map[int]graph.Class{403: graph.ClassPermission, 404: graph.ClassNotFound,
		429: graph.ClassThrottled, 500: graph.ClassTransient, 502: graph.ClassTransient,
		503: graph.ClassTransient, 504: graph.ClassTransient}
	for status, class := range want {
		for _, code := range codes {
			for _, msg := range msgs {
				e := &graph.Error{Op: "presences", Status: status, Code: code, Message: msg}
				f := graph.Classify(e)
				if f.Class != class || f.Status != status {
					t.Errorf("status %d code %q message %q: %+v, want %s", status, code, msg,
						f, class)
				}
				wrapped := graph.Classify(errors.Join(errors.New("poll"), e))
				if wrapped.Class != class {
					t.Errorf("wrapped status %d: %s, want %s", status, wrapped.Class, class)
				}
			}
		}
	}
	if f := graph.Classify(&graph.Error{Status: 403}); f.Retryable() {
		t.Error("a 403 is retryable: a missing permission would be retried forever (C8)")
	}
}

// C9 for token answers as oauth2 reports them: a nil response, an empty
// body, and a body that is not JSON never panic and still classify.
func TestCasesC9OAuthErrorsWithoutBodies(t *testing.T) {
	cases := []struct {
		name string
		err  *oauth2.RetrieveError
		want graph.Class
	}{
		{"no response", &oauth2.RetrieveError{}, graph.ClassUnknown},
		{"503 empty", &oauth2.RetrieveError{Response: &http.Response{StatusCode: 503,
			Header: http.Header{}}}, graph.ClassTransient},
		{"429 html", &oauth2.RetrieveError{Response: &http.Response{StatusCode: 429,
			Header: http.Header{"Retry-After": {"7"}}}, Body: []byte("<html>slow down</html>")},
			graph.ClassThrottled},
		{"401 revoked in body only", &oauth2.RetrieveError{Response: &http.Response{
			StatusCode: 401, Header: http.Header{}},
			Body: []byte(`{"error":"invalid_client","error_codes":[7000229],` +
				`"error_description":"AADSTS7000229: missing service principal"}`)},
			graph.ClassRevoked},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := graph.Classify(tc.err)
			if f.Class != tc.want {
				t.Fatalf("got %+v, want %s", f, tc.want)
			}
			if tc.name == "429 html" && f.Wait(1) != 7*time.Second {
				t.Errorf("Wait = %s, want the Retry-After of 7s", f.Wait(1))
			}
		})
	}
}

// C2 at the header: Retry-After as seconds (with spaces), as an HTTP date,
// and malformed or negative values, which mean "not given" so that the
// caller backs off instead of retrying at once.
func TestCasesC2RetryAfterForms(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"7":                             7 * time.Second,
		" 7 ":                           7 * time.Second,
		"0":                             0,
		"-3":                            0,
		"7s":                            0,
		"":                              0,
		"Mon, 02 Mar 2026 09:00:07 GMT": 7 * time.Second,
		"Mon, 02 Mar 2026 08:59:00 GMT": 0,
	}
	for in, want := range cases {
		if got := graph.ParseRetryAfter(in, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
	f := graph.Classify(&graph.Error{Status: 429})
	for attempt := 1; attempt <= 10; attempt++ {
		if w := f.Wait(attempt); w <= 0 || w > time.Minute+time.Minute/8 {
			t.Errorf("a 429 without Retry-After waits %s at attempt %d", w, attempt)
		}
	}
}

// C2 at the budget: a tenant told Retry-After: 7 waits about 7 s and then
// carries on, while other tenants never wait; a shorter later pause does
// not cut it short.
func TestCasesC2PauseOfSevenSeconds(t *testing.T) {
	b := graph.NewBudget(1000, 0, 0)
	start := time.Now()
	b.Pause("slow", 7*time.Second)
	b.Pause("slow", time.Second)

	if d := time.Until(b.PausedUntil("slow")); d < 6*time.Second || d > 7*time.Second {
		t.Fatalf("pause ends in %s, want about 7s", d)
	}
	for i, other := range []string{"a", "b", "c"} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := b.WaitPresence(ctx, other)
		cancel()
		if err != nil {
			t.Fatalf("tenant %d waited for another tenant's pause: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.WaitPresence(ctx, "slow"); err != nil {
		t.Fatalf("the paused tenant never carried on: %v", err)
	}
	if took := time.Since(start); took < 7*time.Second-50*time.Millisecond {
		t.Errorf("the paused tenant went on after %s, before Retry-After: 7", took)
	}
}

// An edited callback address must not turn a failure into a grant: an
// empty error parameter is still an error, and a repeated parameter makes
// the whole callback untrusted.
func TestCasesC5EditedCallbackIsNeverAGrant(t *testing.T) {
	const tenant = "3f2b8c1e-9d4a-4b6e-8f7a-2c1d0e9b8a76"
	for _, raw := range []string{
		"error=&error=consent_required&admin_consent=True&tenant=" + tenant + "&state=S",
		"error=&admin_consent=True&tenant=" + tenant + "&state=S",
		"admin_consent=True&admin_consent=False&tenant=" + tenant + "&state=S",
		"admin_consent=True&tenant=" + tenant + "&tenant=" + tenant + "&state=S",
		"admin_consent=True&tenant=" + tenant + "&state=S&state=T",
	} {
		q, err := url.ParseQuery(raw)
		if err != nil {
			t.Fatal(err)
		}
		cb, err := graph.ParseConsentCallback(q)
		var ce *graph.ConsentError
		if !errors.As(err, &ce) {
			t.Errorf("%s: granted %+v, want a consent failure", raw, cb)
			continue
		}
		if strings.Contains(raw, "state=T") && ce.State != "" {
			t.Errorf("%s: a repeated state was handed back as %q", raw, ce.State)
		}
	}
}
