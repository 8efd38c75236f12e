// Package api serves OneSync's HTTP side with gin: the customer portal, the
// staff pages, the consent callback, the JSON API and the health probes.
// It talks to Temporal only through the client (start, signal, query) and
// never runs workflow or activity code itself.
package api

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/setera/onesync/store"
	"github.com/setera/onesync/web"
)

// Deps is what the HTTP side needs from the process that serves it.
type Deps struct {
	// Logger receives operator events; zap.NewNop when nil.
	Logger *zap.Logger
	// Temporal starts, signals and queries the workflows.
	Temporal client.Client
	// Store holds accounts, sessions, consent states, tenants and links.
	Store *store.DB

	// PublicURL is the portal's address as a browser sees it, without a
	// trailing slash (for example http://127.0.0.1:8080). The consent
	// redirect URI is PublicURL + "/teams/consent/callback".
	PublicURL string
	// ConsentAuthority is the Entra login host the admin consent opens,
	// https://login.microsoftonline.com in production and the Graph
	// simulator in `onesync dev` and the tests.
	ConsentAuthority string
	// ClientID is the application (client) id of OneSync's Entra app.
	ClientID string

	// TemporalUIURL is the Temporal UI's address, without a trailing slash;
	// the staff pages link each organisation's workflow there. Empty: no
	// links.
	TemporalUIURL string
	// Namespace is the Temporal namespace of OneSync's workflows.
	Namespace string

	// SecureCookies marks cookies Secure even when the request arrived over
	// plain http, for a deployment behind a TLS-terminating proxy.
	SecureCookies bool
	// TrustedProxies are the addresses whose X-Forwarded-For is believed
	// when finding a client's address for login throttling. Empty: none.
	TrustedProxies []string

	// DirectorySource says where the import finds the organisation's
	// extensions: DirectoryOneCloud (the PBX's directory API, the default
	// when empty) or DirectoryCSV (a SIP deployment: the list the admin
	// uploads under Settings > Extensions, kept in the store). It must
	// agree with the directory the worker's activities use.
	DirectorySource string

	// Metrics, when set, serves Prometheus metrics on /metrics.
	Metrics http.Handler

	// Now is the clock, time.Now when nil; tests move it.
	Now func() time.Time
}

// The values of Deps.DirectorySource.
const (
	DirectoryOneCloud = "onecloud"
	DirectoryCSV      = "csv"
)

// server holds what every handler shares.
type server struct {
	d         Deps
	log       *zap.Logger
	pages     map[string]*template.Template
	throttle  *throttle
	now       func() time.Time
	csp       string
	dummyHash []byte
}

// New returns the handler for every OneSync page and endpoint.
func New(d Deps) http.Handler {
	h, err := NewServer(d)
	if err != nil {
		// The templates are embedded: a parse error is a build bug, caught
		// by the tests long before it reaches a deployment.
		panic(err)
	}
	return h
}

// NewServer is New with the error returned instead of a panic.
func NewServer(d Deps) (http.Handler, error) {
	s := &server{d: d, log: d.Logger, now: d.Now}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.d.PublicURL = strings.TrimRight(d.PublicURL, "/")
	s.d.TemporalUIURL = strings.TrimRight(d.TemporalUIURL, "/")
	switch d.DirectorySource {
	case "":
		s.d.DirectorySource = DirectoryOneCloud
	case DirectoryOneCloud, DirectoryCSV:
	default:
		return nil, fmt.Errorf("directory source %q: want %q or %q", d.DirectorySource,
			DirectoryOneCloud, DirectoryCSV)
	}
	s.throttle = newThrottle(maxFailures, failureWindow)

	pages, err := web.Pages(s.templateFuncs())
	if err != nil {
		return nil, fmt.Errorf("load pages: %w", err)
	}
	s.pages = pages

	s.csp = contentSecurityPolicy(d.ConsentAuthority)
	s.dummyHash, err = hashPassword("not a real password, only evens out timing")
	if err != nil {
		return nil, fmt.Errorf("prepare password check: %w", err)
	}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	if err := r.SetTrustedProxies(d.TrustedProxies); err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	r.Use(gin.Recovery(), s.securityHeaders, s.limitBody)

	r.GET("/healthz", healthz)
	r.GET("/readyz", readyz(d))
	if d.Metrics != nil {
		r.GET("/metrics", gin.WrapH(d.Metrics))
	}
	r.StaticFS("/static", http.FS(web.Static()))

	s.portalRoutes(r)
	s.staffRoutes(r)
	r.NoRoute(func(c *gin.Context) { s.notFound(c) })
	return r, nil
}

// contentSecurityPolicy allows only OneSync's own scripts, styles and
// images. Forms may also go to the consent authority, because the
// no-JavaScript consent path is a form POST answered by a redirect there.
func contentSecurityPolicy(authority string) string {
	formAction := "'self'"
	if u, err := url.Parse(authority); err == nil && u.Scheme != "" && u.Host != "" {
		formAction += " " + u.Scheme + "://" + u.Host
	}
	return "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; " +
		"object-src 'none'; form-action " + formAction
}
