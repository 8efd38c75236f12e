package graph

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// refreshMargin is how long before its expiry a cached token is replaced,
// at most; short-lived tokens are replaced after three quarters of their
// life.
const refreshMargin = 5 * time.Minute

var tenantPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-` +
	`[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ValidTenantID reports whether s is a tenant id (a GUID). OneSync only
// ever addresses tenants by id: a domain name could be re-pointed.
func ValidTenantID(s string) bool {
	return tenantPattern.MatchString(s)
}

// AppToken is an app-only access token for one tenant with the claims
// OneSync checks. Its String method and JSON form never show the token.
type AppToken struct {
	AccessToken string    `json:"-"`
	TenantID    string    `json:"tenantId"`
	AppID       string    `json:"appId"`
	Roles       []string  `json:"roles"`
	Expiry      time.Time `json:"expiry"`
}

// String describes t without the token itself.
func (t AppToken) String() string {
	return fmt.Sprintf("AppToken{tenant: %s, app: %s, roles: %v, expiry: %s}",
		t.TenantID, t.AppID, t.Roles, t.Expiry.Format(time.RFC3339))
}

// GoString keeps %#v from printing the token.
func (t AppToken) GoString() string { return t.String() }

// HasRoles reports whether t carries every one of roles.
func (t AppToken) HasRoles(roles ...string) bool {
	for _, r := range roles {
		if !slices.Contains(t.Roles, r) {
			return false
		}
	}
	return true
}

// TokenSource hands out app-only tokens per tenant through the OAuth 2.0
// client-credentials grant at {authority}/{tenant}/oauth2/v2.0/token. Tokens
// are cached per (client id, tenant) and replaced before they expire; a
// token whose tid claim is not the tenant asked for is refused, so a token
// of one tenant is never used for another. It is safe for concurrent use;
// concurrent callers for one tenant share one token request.
type TokenSource struct {
	cfg Config
	log *zap.Logger
	now func() time.Time

	mu      sync.Mutex
	tenants map[cacheKey]*tenantToken
}

type cacheKey struct {
	clientID string
	tenant   string
}

// tenantToken is one tenant's cache entry. sem (capacity 1) serialises
// token requests for the tenant while letting waiters honour their context.
type tenantToken struct {
	sem     chan struct{}
	cc      clientcredentials.Config
	token   AppToken
	renewAt time.Time
}

// NewTokenSource returns a token source for cfg, which must be valid.
func NewTokenSource(cfg Config) (*TokenSource, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	return &TokenSource{
		cfg:     cfg,
		log:     cfg.Logger,
		now:     time.Now,
		tenants: make(map[cacheKey]*tenantToken),
	}, nil
}

// Token returns a valid app-only token for tenant, from the cache when it
// is not close to expiry. Failures are *Error values for Classify.
func (s *TokenSource) Token(ctx context.Context, tenant string) (AppToken, error) {
	if !ValidTenantID(tenant) {
		return AppToken{}, &Error{Op: "token", Tenant: tenant, Status: 0,
			Code: "invalid_tenant", Message: "tenant id is not a GUID"}
	}
	entry := s.entry(tenant)

	select {
	case entry.sem <- struct{}{}:
	case <-ctx.Done():
		return AppToken{}, fmt.Errorf("wait for token of tenant %s: %w", tenant, ctx.Err())
	}
	defer func() { <-entry.sem }()

	if entry.token.AccessToken != "" && s.now().Before(entry.renewAt) {
		return entry.token, nil
	}

	tok, err := s.fetch(ctx, entry, tenant)
	if err != nil {
		return AppToken{}, err
	}
	entry.token = tok
	entry.renewAt = renewTime(s.now(), tok.Expiry)
	return tok, nil
}

// Forget drops the cached token of tenant, for example after Graph refused
// it with 401, so that the next call asks Entra again.
func (s *TokenSource) Forget(tenant string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tenants, cacheKey{clientID: s.cfg.ClientID, tenant: tenant})
}

func (s *TokenSource) entry(tenant string) *tenantToken {
	key := cacheKey{clientID: s.cfg.ClientID, tenant: tenant}

	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.tenants[key]; ok {
		return e
	}
	e := &tenantToken{
		sem: make(chan struct{}, 1),
		cc: clientcredentials.Config{
			ClientID:     s.cfg.ClientID,
			ClientSecret: s.cfg.ClientSecret,
			TokenURL:     s.cfg.Authority + "/" + url.PathEscape(tenant) + "/oauth2/v2.0/token",
			Scopes:       []string{GraphScope},
			AuthStyle:    oauth2.AuthStyleInParams,
		},
	}
	s.tenants[key] = e
	return e
}

func (s *TokenSource) fetch(ctx context.Context, e *tenantToken, tenant string) (AppToken, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.cfg.HTTPClient)
	raw, err := e.cc.Token(ctx)
	if err != nil {
		return AppToken{}, tokenError(tenant, err)
	}

	claims, err := decodeClaims(raw.AccessToken)
	if err != nil {
		return AppToken{}, &Error{Op: "token", Tenant: tenant, Code: "invalid_token",
			Message: "token claims unreadable", Err: err}
	}
	if !strings.EqualFold(claims.TenantID, tenant) {
		s.log.Error("token refused: tid is not the tenant asked for",
			zap.String("tenant", tenant), zap.String("tid", claims.TenantID))
		return AppToken{}, &Error{Op: "token", Tenant: tenant, Code: "tenant_mismatch",
			Message: fmt.Sprintf("token tid %q is not the tenant asked for", claims.TenantID)}
	}
	app := claims.AppID
	if app == "" {
		app = claims.AuthorizedParty
	}
	if app != "" && !strings.EqualFold(app, s.cfg.ClientID) {
		return AppToken{}, &Error{Op: "token", Tenant: tenant, Code: "client_mismatch",
			Message: fmt.Sprintf("token appid %q is not OneSync's client id", app)}
	}

	expiry := raw.Expiry
	if claims.Expiry > 0 {
		if exp := time.Unix(claims.Expiry, 0); expiry.IsZero() || exp.Before(expiry) {
			expiry = exp
		}
	}
	return AppToken{
		AccessToken: raw.AccessToken,
		TenantID:    claims.TenantID,
		AppID:       app,
		Roles:       claims.Roles,
		Expiry:      expiry,
	}, nil
}

// renewTime is when a token expiring at expiry should be replaced.
func renewTime(now, expiry time.Time) time.Time {
	if expiry.IsZero() {
		return now.Add(time.Minute)
	}
	margin := min(refreshMargin, expiry.Sub(now)/4)
	return expiry.Add(-margin)
}

// tokenError turns an OAuth failure into an *Error that keeps the HTTP
// status and the AADSTS code but not the response body.
func tokenError(tenant string, err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re == nil {
		return &Error{Op: "token", Tenant: tenant, Err: err}
	}
	ge := &Error{Op: "token", Tenant: tenant, Code: re.ErrorCode}
	if re.Response != nil {
		ge.Status = re.Response.StatusCode
		ge.RetryAfter = ParseRetryAfter(re.Response.Header.Get("Retry-After"), time.Now())
	}
	ge.AADSTS = AADSTSCode(re.ErrorDescription)
	if ge.AADSTS == "" {
		ge.AADSTS = AADSTSCode(string(re.Body))
	}
	ge.Message = firstLine(re.ErrorDescription)
	return ge
}

// tokenClaims are the access-token claims OneSync reads.
type tokenClaims struct {
	TenantID        string   `json:"tid"`
	AppID           string   `json:"appid"`
	AuthorizedParty string   `json:"azp"`
	Roles           []string `json:"roles"`
	Expiry          int64    `json:"exp"`
}

// decodeClaims reads the payload of a JWT without verifying its signature.
// That is acceptable here, and only here: the token came straight from the
// authority over TLS in answer to OneSync's own authenticated request, and
// OneSync checks the claims to catch a wrong cache or a wrong tenant, not to
// authenticate a stranger. Graph, the token's audience, verifies the
// signature. Code that receives tokens from others must verify them.
func decodeClaims(token string) (tokenClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return tokenClaims{}, fmt.Errorf("token has %d parts, want 3", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return tokenClaims{}, fmt.Errorf("decode token payload: %w", err)
	}
	var c tokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return tokenClaims{}, fmt.Errorf("parse token payload: %w", err)
	}
	return c, nil
}
