package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"github.com/setera/onesync/pbx/csvdir"
	"github.com/setera/onesync/store"
)

// Cookie names. Admin and staff sessions live in separate cookies so that
// one browser can hold both, as a demo or a browser test does.
const (
	adminCookie = "onesync_admin"
	staffCookie = "onesync_staff"
	csrfCookie  = "onesync_csrf" // pre-session CSRF token of the log-in and register forms
	csrfField   = "csrf"
	csrfHeader  = "X-CSRF-Token"
)

// Session kinds.
const (
	kindAdmin = "admin"
	kindStaff = "staff"
)

const (
	sessionTTL   = 12 * time.Hour
	consentTTL   = 10 * time.Minute
	maxBodyBytes = 64 << 10
)

// bcryptCost is the work factor of new password hashes; tests lower it.
var bcryptCost = 12

// securityHeaders sets the headers a review expects on every answer.
func (s *server) securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", s.csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// The consent callback URL carries the state: never send it onwards.
	h.Set("Referrer-Policy", "no-referrer")
	// No Cross-Origin-Opener-Policy: the consent callback, opened in a popup
	// from the authority's pages, must keep window.opener to refresh it.
	c.Next()
}

// limitBody refuses request bodies larger than any form of OneSync needs,
// with a page that says so rather than a form that looks empty. The
// extension list upload alone may carry a file of up to csvdir.MaxBytes;
// its multipart body is read here, before the CSRF check reads its token,
// so that an oversized file is reported as such.
func (s *server) limitBody(c *gin.Context) {
	if c.Request.Body == nil || c.Request.Method == http.MethodGet {
		c.Next()
		return
	}
	upload := c.FullPath() == extensionsRoute && strings.HasPrefix(
		strings.ToLower(c.GetHeader("Content-Type")), "multipart/form-data")

	var err error
	if upload {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, uploadBodyBytes)
		err = c.Request.ParseMultipartForm(uploadBodyBytes)
	} else {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes)
		err = c.Request.ParseForm()
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge) && upload:
		s.problem(c, http.StatusRequestEntityTooLarge, "portal", problem{
			Heading: "This file is too large",
			Message: fmt.Sprintf("OneSync accepts extension lists of up to %d MB. Nothing "+
				"was changed; split the list or remove columns OneSync does not need, then "+
				"upload it again.", csvdir.MaxBytes>>20),
			ActionURL: c.Request.URL.Path, ActionLabel: "Back to Settings > Extensions"})
		c.Abort()
		return
	case errors.As(err, &tooLarge):
		s.problem(c, http.StatusRequestEntityTooLarge, "portal", problem{
			Heading: "This form is too large",
			Message: "OneSync accepts forms of up to 64 KB. Shorten what you typed, " +
				"then send the form again.",
			ActionURL: "/", ActionLabel: "Go to the start page"})
		c.Abort()
		return
	case err != nil:
		s.problem(c, http.StatusBadRequest, "portal", problem{
			Heading:   "This form could not be read",
			Message:   "Your browser sent a form OneSync cannot read. Reload the page and try again.",
			ActionURL: "/", ActionLabel: "Go to the start page"})
		c.Abort()
		return
	}
	c.Next()
}

// randomToken returns 32 random bytes, base64url-encoded without padding.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// randomID returns a short random identifier for organisations and accounts.
func randomID() (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// digest is the SHA-256 of a secret value in hex. Session ids and consent
// states are stored only as digests, so that a copy of the database cannot
// be used to act as someone.
func digest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// hashPassword returns the bcrypt hash of a password.
func hashPassword(pw string) ([]byte, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcryptCost)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// HashPassword returns the bcrypt hash that the store keeps for a password.
// `onesync staff add` and `onesync dev` use it so that every account is
// hashed the same way the log-in pages check it.
func HashPassword(pw string) (string, error) {
	h, err := hashPassword(pw)
	return string(h), err
}

// passwordMatches compares in constant time; a missing account is compared
// against a dummy hash so that timing does not tell which emails exist.
func (s *server) passwordMatches(hash, pw string) bool {
	if hash == "" {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(pw))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// secure reports whether cookies must carry the Secure flag.
func (s *server) secure(r *http.Request) bool {
	return s.d.SecureCookies || r.TLS != nil
}

func (s *server) setCookie(c *gin.Context, name, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   s.secure(c.Request),
		SameSite: http.SameSiteLaxMode,
	})
}

// startSession creates a session of the given kind and sets its cookie.
// The cookie holds the random token; the store holds only its digest.
func (s *server) startSession(c *gin.Context, kind, accountID string) error {
	token, err := randomToken()
	if err != nil {
		return err
	}
	csrf, err := randomToken()
	if err != nil {
		return err
	}

	now := s.now()
	sess := store.Session{
		ID:        digest(token),
		Kind:      kind,
		AccountID: accountID,
		CSRFToken: csrf,
		CreatedAt: now,
		ExpiresAt: now.Add(sessionTTL),
	}
	if err := s.d.Store.CreateSession(c.Request.Context(), sess); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	s.setCookie(c, cookieFor(kind), token, int(sessionTTL/time.Second))
	return nil
}

func cookieFor(kind string) string {
	if kind == kindStaff {
		return staffCookie
	}
	return adminCookie
}

// session returns the caller's live session of the given kind.
func (s *server) session(c *gin.Context, kind string) (store.Session, bool, error) {
	token, err := c.Cookie(cookieFor(kind))
	if err != nil || token == "" || len(token) > 100 {
		return store.Session{}, false, nil
	}
	sess, err := s.d.Store.Session(c.Request.Context(), digest(token), s.now())
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, false, nil
	}
	if err != nil {
		return store.Session{}, false, fmt.Errorf("read session: %w", err)
	}
	if sess.Kind != kind {
		return store.Session{}, false, nil
	}
	return sess, true, nil
}

// endSession deletes the session and its cookie.
func (s *server) endSession(c *gin.Context, kind string) error {
	if token, err := c.Cookie(cookieFor(kind)); err == nil && token != "" && len(token) <= 100 {
		if err := s.d.Store.DeleteSession(c.Request.Context(), digest(token)); err != nil &&
			!errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete session: %w", err)
		}
	}
	s.setCookie(c, cookieFor(kind), "", -1)
	return nil
}

// sentCSRF returns the CSRF token the request carries, in the form or in
// the header the consent script sets.
func sentCSRF(c *gin.Context) string {
	if v := c.GetHeader(csrfHeader); v != "" {
		return v
	}
	return c.PostForm(csrfField)
}

// preSessionCSRF returns the caller's log-in form token, setting a new
// cookie when there is none yet (double-submit: the form field must equal
// the cookie, which another site can neither read nor set).
func (s *server) preSessionCSRF(c *gin.Context) (string, error) {
	if v, err := c.Cookie(csrfCookie); err == nil && len(v) == 43 {
		return v, nil
	}
	v, err := randomToken()
	if err != nil {
		return "", err
	}
	s.setCookie(c, csrfCookie, v, int((2 * time.Hour).Seconds()))
	return v, nil
}

// preSessionCSRFOK checks a log-in or register form's token.
func preSessionCSRFOK(c *gin.Context) bool {
	cookie, err := c.Cookie(csrfCookie)
	return err == nil && sameToken(cookie, sentCSRF(c))
}
