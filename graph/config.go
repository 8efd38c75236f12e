package graph

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Production endpoints, used when Config leaves them empty. Tests and
// `onesync dev` always point Config at the simulator instead.
const (
	DefaultAuthority    = "https://login.microsoftonline.com"
	DefaultGraphBaseURL = "https://graph.microsoft.com/v1.0"
)

// GraphScope is the client-credentials scope: every application permission
// the tenant's admin granted to the app.
const GraphScope = "https://graph.microsoft.com/.default"

// Limits that Graph documents and that OneSync budgets against.
const (
	// MaxPresenceIDs is the most ids one getPresencesByUserId request takes.
	MaxPresenceIDs = 650
	// TenantPresenceRequests is how many presence requests Graph allows an
	// application per tenant in every TenantPresenceWindow.
	TenantPresenceRequests = 1500
	// TenantPresenceWindow is the window of TenantPresenceRequests.
	TenantPresenceWindow = 30 * time.Second
	// GraphAppRateLimit is Graph's limit of requests per second per
	// application over all tenants; GlobalRate must stay below it.
	GraphAppRateLimit = 2000
	// DefaultGlobalRate is the default of Config.GlobalRate, half of Graph's
	// limit so that retries and other traffic keep room.
	DefaultGlobalRate = 1000
)

// Config is what OneSync needs to reach Entra ID and Graph as its
// multi-tenant application.
type Config struct {
	// ClientID is the application (client) id of OneSync's Entra app.
	ClientID string `json:"clientId"`
	// ClientSecret is the app's client secret. It is never logged or
	// marshalled.
	ClientSecret string `json:"-"`
	// Authority is the Entra login host, DefaultAuthority when empty.
	Authority string `json:"authority"`
	// GraphBaseURL is the Graph root including the version,
	// DefaultGraphBaseURL when empty.
	GraphBaseURL string `json:"graphBaseUrl"`
	// GlobalRate is the most Graph requests per second over all tenants,
	// DefaultGlobalRate when 0.
	GlobalRate float64 `json:"globalRate"`
	// HTTPClient sends token and Graph requests; a client with a 60 s
	// timeout when nil.
	HTTPClient *http.Client `json:"-"`
	// Logger receives operator events (throttled, revoked); zap.NewNop when
	// nil.
	Logger *zap.Logger `json:"-"`
}

// WithDefaults returns c with every empty field set to its default.
func (c Config) WithDefaults() Config {
	if c.Authority == "" {
		c.Authority = DefaultAuthority
	}
	c.Authority = strings.TrimRight(c.Authority, "/")
	if c.GraphBaseURL == "" {
		c.GraphBaseURL = DefaultGraphBaseURL
	}
	c.GraphBaseURL = strings.TrimRight(c.GraphBaseURL, "/")
	if c.GlobalRate == 0 {
		c.GlobalRate = DefaultGlobalRate
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Validate reports every problem of c (after WithDefaults) in one error.
func (c Config) Validate() error {
	c = c.WithDefaults()

	var errs []error
	if strings.TrimSpace(c.ClientID) == "" {
		errs = append(errs, errors.New("client id is empty"))
	}
	if c.ClientSecret == "" {
		errs = append(errs, errors.New("client secret is empty"))
	}
	if err := checkBaseURL(c.Authority); err != nil {
		errs = append(errs, fmt.Errorf("authority: %w", err))
	}
	if err := checkBaseURL(c.GraphBaseURL); err != nil {
		errs = append(errs, fmt.Errorf("graph base url: %w", err))
	}
	if c.GlobalRate < 0 || c.GlobalRate >= GraphAppRateLimit {
		errs = append(errs, fmt.Errorf("global rate %g must be above 0 and below %d per second",
			c.GlobalRate, GraphAppRateLimit))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("graph config: %w", err)
	}
	return nil
}

// String describes c without the client secret, for start-up logs.
func (c Config) String() string {
	secret := "empty"
	if c.ClientSecret != "" {
		secret = "set"
	}
	return fmt.Sprintf("graph.Config{ClientID: %s, ClientSecret: %s, Authority: %s, "+
		"GraphBaseURL: %s, GlobalRate: %g}", c.ClientID, secret, c.Authority,
		c.GraphBaseURL, c.GlobalRate)
}

// GoString keeps %#v from printing the secret.
func (c Config) GoString() string { return c.String() }

func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse %q: %w", raw, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("%q is not an http or https URL", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must not carry a query or fragment", raw)
	}
	return nil
}
