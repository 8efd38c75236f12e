package graph

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Class is the kind of a Graph or Entra failure, which decides what the
// caller does next: stop the tenant, alarm an operator, wait, or retry.
type Class string

// The failure classes. Classify maps every error onto exactly one of them.
const (
	// ClassNone is the class of a nil error.
	ClassNone Class = ""
	// ClassRevoked means the customer removed or disabled the enterprise
	// app, never consented, or the tenant does not exist: stop the tenant.
	ClassRevoked Class = "revoked"
	// ClassCredentials means OneSync's own client id or secret is wrong or
	// expired: an operator alarm, not a customer revocation.
	ClassCredentials Class = "credentials"
	// ClassPermission means Graph answered 403: consent exists but lacks a
	// permission. Retrying does not help until an admin grants it.
	ClassPermission Class = "permission"
	// ClassThrottled means Graph answered 429: wait RetryAfter (or back off)
	// and carry on.
	ClassThrottled Class = "throttled"
	// ClassTransient means a 5xx, a timeout or a broken connection: retry
	// with backoff.
	ClassTransient Class = "transient"
	// ClassNotFound means the addressed object (a user, a delta link) does
	// not exist.
	ClassNotFound Class = "not-found"
	// ClassBadRequest means Graph or Entra refused the request itself (400):
	// retrying the same request cannot help.
	ClassBadRequest Class = "bad-request"
	// ClassCanceled means the caller's context was cancelled: nobody failed.
	ClassCanceled Class = "canceled"
	// ClassUnknown is any other failure.
	ClassUnknown Class = "unknown"
)

// Codes in an Entra error description that mean the customer removed or
// disabled OneSync's enterprise app, never consented, or has no tenant.
var revokedCodes = map[string]bool{
	"AADSTS700016":  true, // application not found in the directory
	"AADSTS7000229": true, // missing service principal
	"AADSTS7000112": true, // application disabled
	"AADSTS65001":   true, // no consent
	"AADSTS90002":   true, // tenant not found
}

// Codes that mean OneSync's own credentials are wrong.
var credentialCodes = map[string]bool{
	"AADSTS7000215": true, // invalid client secret
	"AADSTS7000222": true, // client secret expired
}

var aadstsPattern = regexp.MustCompile(`AADSTS\d+`)

// Error is a failed Graph or Entra request in a form that no longer depends
// on the SDK that made it. graph/client converts SDK errors into it, and the
// token source converts OAuth errors into it, so Classify has one shape to
// read.
type Error struct {
	// Op names what was attempted, for example "token" or "list users".
	Op string
	// Tenant is the tenant the request was for.
	Tenant string
	// Status is the HTTP status, 0 when no response arrived.
	Status int
	// Code is the OData error code (Graph) or the OAuth error (Entra,
	// for example invalid_client).
	Code string
	// AADSTS is the Entra error code, for example AADSTS7000215, if any.
	AADSTS string
	// Message is the service's human-readable message.
	Message string
	// RetryAfter is the Retry-After delay of a 429 or 503, 0 when absent.
	RetryAfter time.Duration
	// Err is the underlying error, if any.
	Err error
}

// Error describes the failure without any token or secret.
func (e *Error) Error() string {
	if e == nil {
		return "<nil graph error>"
	}
	var b strings.Builder
	b.WriteString("graph")
	if e.Op != "" {
		b.WriteString(" " + e.Op)
	}
	if e.Tenant != "" {
		b.WriteString(" tenant " + e.Tenant)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": status %d", e.Status)
	}
	if e.Code != "" {
		b.WriteString(": " + e.Code)
	}
	if e.AADSTS != "" && !strings.Contains(e.Message, e.AADSTS) {
		b.WriteString(": " + e.AADSTS)
	}
	if e.Message != "" {
		b.WriteString(": " + firstLine(e.Message))
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// Failure is the classification of an error.
type Failure struct {
	Class Class
	// Status is the HTTP status, 0 when there was none.
	Status int
	// Code is the AADSTS code when there is one, else the OData or OAuth
	// error code.
	Code string
	// RetryAfter is the server's Retry-After delay, 0 when absent.
	RetryAfter time.Duration
}

// Retryable reports whether the same request may succeed later without
// anyone changing anything: throttled and transient failures.
func (f Failure) Retryable() bool {
	return f.Class == ClassThrottled || f.Class == ClassTransient
}

// Wait is how long to wait before the attempt-th retry (1 for the first):
// the server's Retry-After when it gave one, else exponential backoff.
func (f Failure) Wait(attempt int) time.Duration {
	if f.RetryAfter > 0 {
		return f.RetryAfter
	}
	return Backoff(attempt)
}

// Backoff is an exponential backoff with jitter for the attempt-th retry
// (1 for the first): about 1 s, 2 s, 4 s ... capped at 60 s. The jitter keeps
// many tenants from retrying in step.
func Backoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := time.Second << min(attempt-1, 6)
	if d > time.Minute {
		d = time.Minute
	}
	jitter := time.Duration(rand.Int64N(int64(d) / 4))
	return d - d/8 + jitter
}

// Classify returns the class of err. It reads the HTTP status first (429,
// 403, 404, 5xx decide on their own), then the Entra or OData code. It is
// nil-safe: a nil error is ClassNone, a nil *Error is ClassUnknown.
func Classify(err error) Failure {
	if err == nil {
		return Failure{Class: ClassNone}
	}

	var ge *Error
	if errors.As(err, &ge) {
		if ge == nil {
			return Failure{Class: ClassUnknown}
		}
		f := classifyResponse(ge.Status, ge.Code, ge.AADSTS+" "+ge.Message, ge.RetryAfter)
		if f.Class != ClassUnknown || ge.Status != 0 {
			return f
		}
		if ge.Err != nil {
			return classifyTransport(ge.Err)
		}
		if ge.Code != "" {
			// A request OneSync refused to send or an answer it refused
			// to accept (a token for the wrong tenant): not retryable.
			f.Class = ClassBadRequest
		}
		return f
	}

	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re != nil {
		status, retry := 0, time.Duration(0)
		if re.Response != nil {
			status = re.Response.StatusCode
			retry = ParseRetryAfter(re.Response.Header.Get("Retry-After"), time.Now())
		}
		text := re.ErrorDescription + " " + string(re.Body)
		return classifyResponse(status, re.ErrorCode, text, retry)
	}

	return classifyTransport(err)
}

// classifyResponse classifies an answer from the service by status first,
// then by code.
func classifyResponse(status int, code, text string, retryAfter time.Duration) Failure {
	aadsts := aadstsPattern.FindString(text)
	f := Failure{Status: status, Code: code, RetryAfter: retryAfter}
	if aadsts != "" {
		f.Code = aadsts
	}

	switch {
	case status == http.StatusTooManyRequests:
		f.Class = ClassThrottled
	case status == http.StatusForbidden:
		f.Class = ClassPermission
	case status == http.StatusNotFound:
		f.Class = ClassNotFound
	case status >= 500:
		f.Class = ClassTransient
	case status == http.StatusRequestTimeout:
		f.Class = ClassTransient
	case revokedCodes[aadsts]:
		f.Class = ClassRevoked
	case credentialCodes[aadsts]:
		f.Class = ClassCredentials
	case status == http.StatusUnauthorized:
		// A 401 without a known AADSTS code: Graph refused the token that
		// Entra issued, or Entra refused the client. Either way it is
		// OneSync's side that must be fixed.
		f.Class = ClassCredentials
	case status >= 400:
		f.Class = ClassBadRequest
	default:
		f.Class = ClassUnknown
	}
	return f
}

// classifyTransport classifies an error that carries no HTTP answer.
func classifyTransport(err error) Failure {
	if errors.Is(err, context.Canceled) {
		return Failure{Class: ClassCanceled}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Failure{Class: ClassTransient}
	}

	var ne net.Error
	if errors.As(err, &ne) && ne != nil {
		return Failure{Class: ClassTransient}
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue != nil {
		return Failure{Class: ClassTransient}
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe != nil {
		return Failure{Class: ClassTransient}
	}
	return Failure{Class: ClassUnknown}
}

// ParseRetryAfter reads a Retry-After header, given as seconds or as an
// HTTP date, relative to now. It returns 0 when the header is absent or
// unreadable.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// AADSTSCode returns the first AADSTS code in s, or "".
func AADSTSCode(s string) string {
	return aadstsPattern.FindString(s)
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}
