// Package graphsim is an in-process simulator of Microsoft Entra ID and
// Microsoft Graph, faithful enough that OneSync's msgraph-sdk-go client
// talks to it unchanged, pointed at it only by configuration. It serves the
// token endpoint and admin consent pages of Entra, the Graph endpoints that
// OneSync uses (users, users delta, presences), a control page and JSON API
// to steer it, and Go methods for tests.
//
// It must never be reachable from outside the machine: Start refuses any
// address that is not loopback. It imports neither msgraph-sdk-go nor
// graph/client, so its tests build fast.
package graphsim

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/presence"
)

// AppState is the state of OneSync's enterprise app (service principal) in
// a simulated tenant.
type AppState string

// The app states a control call can set. Each non-present state makes the
// token endpoint answer with the code the real service uses for it.
const (
	// AppPresent: the app is installed (after consent, tokens are issued).
	AppPresent AppState = "present"
	// AppDeleted: the admin deleted the enterprise app; tokens fail with
	// 401 invalid_client AADSTS7000229.
	AppDeleted AppState = "deleted"
	// AppMissing: the app is unknown to the directory; tokens fail with
	// 400 unauthorized_client AADSTS700016.
	AppMissing AppState = "missing"
	// AppDisabled: the admin disabled sign-in for the app; tokens fail
	// with 400 unauthorized_client AADSTS7000112.
	AppDisabled AppState = "disabled"
)

// DefaultAddr is where `onesync dev` serves the simulator.
const DefaultAddr = "127.0.0.1:8081"

// Options configures a simulator.
type Options struct {
	// Seed makes generated directories and ids repeatable.
	Seed int64
	// ClientID and ClientSecret are the credentials of the one simulated
	// multi-tenant application (OneSync). Both are required; dev
	// generates the secret at run time.
	ClientID     string
	ClientSecret string
	// Roles are the application permissions a consent grants; default
	// graph.Permissions, which is what OneSync asks for. Tests of
	// setPresence add Presence.ReadWrite.All.
	Roles []string
	// RedirectURIs are the app's registered redirect URIs for admin
	// consent. Empty allows any http or https URI, a simulator laxity.
	RedirectURIs []string
	// TokenLifetime is how long issued tokens live; default one hour.
	TokenLifetime time.Duration
	// PresenceLimit and PresenceWindow are the per-tenant presence request
	// limit; default graph.TenantPresenceRequests per 30 s.
	PresenceLimit  int
	PresenceWindow time.Duration
}

// TenantInfo describes a simulated tenant.
type TenantInfo struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Domain     string   `json:"domain"`
	AdminEmail string   `json:"adminEmail"`
	Users      int      `json:"users"`
	Consented  bool     `json:"consented"`
	App        AppState `json:"app"`
	Roles      []string `json:"roles"`
}

// RequestCounts are the requests a tenant received, by endpoint.
type RequestCounts struct {
	Token         int `json:"token"`
	Users         int `json:"users"`
	Delta         int `json:"delta"`
	Presences     int `json:"presences"`
	Presence      int `json:"presence"`
	SetPresence   int `json:"setPresence"`
	ClearPresence int `json:"clearPresence"`
	// Throttled counts 429 answers, injected or from the presence limit.
	Throttled int `json:"throttled"`
	// Failed counts injected errors and failing-id answers.
	Failed int `json:"failed"`
}

// Errors of the Go and control API.
var (
	ErrUnknownTenant = errors.New("unknown tenant")
	ErrUnknownUser   = errors.New("unknown user")
	ErrNoLicence     = errors.New("user has no Teams licence")
	ErrBadPresence   = errors.New("invalid presence")
)

// Sim is a running simulator. Its methods are safe for concurrent use.
type Sim struct {
	opts    Options
	hmacKey []byte
	handler http.Handler

	mu            sync.RWMutex
	tenants       map[string]*tenant // by id
	order         []string           // tenant ids in creation order
	secretExpired bool
	flows         map[string]*consentFlow
	next          int64 // tenants generated so far, for seeds and names

	srvMu    sync.Mutex
	server   *http.Server
	listener net.Listener
}

// tenant is one simulated directory. mu guards everything below it.
type tenant struct {
	id, name, domain string
	adminEmail       string
	adminPassword    string
	// spID is the object id of the app's service principal here.
	spID string

	mu        sync.Mutex
	consented bool
	app       AppState
	roles     []string
	users     []*user
	byID      map[string]*user
	seq       int64 // change counter for delta links
	counts    RequestCounts
	window    []time.Time // arrival times of the last presence requests
	windowPos int
	faults    faults
}

type faults struct {
	throttleN     int
	throttleAfter time.Duration
	errorStatus   int
	errorN        int
	errorEmpty    bool
	latency       time.Duration
	failIDs       map[string]bool
}

// user is a directory user with what Teams knows of it.
type user struct {
	graph.User
	givenName, surname, jobTitle string
	licensed                     bool
	deleted                      bool
	changeSeq                    int64

	base      presence.Presence
	session   *appSession
	changedAt time.Time
}

// appSession is a presence set by the app through setPresence.
type appSession struct {
	p       presence.Presence
	expires time.Time
}

// New returns a simulator with no tenants; add them with AddTenant or
// DemoTenant. It panics if ClientID or ClientSecret is empty, a programming
// error.
func New(opts Options) *Sim {
	if opts.ClientID == "" || opts.ClientSecret == "" {
		panic("graphsim: Options.ClientID and Options.ClientSecret are required")
	}
	if len(opts.Roles) == 0 {
		opts.Roles = slices.Clone(graph.Permissions)
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = time.Hour
	}
	if opts.PresenceLimit <= 0 {
		opts.PresenceLimit = graph.TenantPresenceRequests
	}
	if opts.PresenceWindow <= 0 {
		opts.PresenceWindow = graph.TenantPresenceWindow
	}
	s := &Sim{
		opts:    opts,
		hmacKey: randomBytes(32),
		tenants: make(map[string]*tenant),
		flows:   make(map[string]*consentFlow),
	}
	s.handler = s.routes()
	return s
}

// Handler serves Entra, Graph and the control pages on one handler.
func (s *Sim) Handler() http.Handler { return s.handler }

// Start serves the simulator on addr (for example 127.0.0.1:0), which must
// be a loopback address.
func (s *Sim) Start(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("graphsim address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("graphsim address %q is not loopback", addr)
	}

	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.server != nil {
		return errors.New("graphsim already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("graphsim listen: %w", err)
	}
	s.listener = ln
	s.server = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.server.Serve(ln) }()
	return nil
}

// URL is the simulator's base URL after Start, for example
// http://127.0.0.1:34567. Entra's authority is URL() and Graph's base URL
// is URL()+"/v1.0".
func (s *Sim) URL() string {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.listener == nil {
		return ""
	}
	return "http://" + s.listener.Addr().String()
}

// Close stops the server started by Start.
func (s *Sim) Close() error {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.server == nil {
		return nil
	}
	err := s.server.Close()
	s.server, s.listener = nil, nil
	if err != nil {
		return fmt.Errorf("close graphsim: %w", err)
	}
	return nil
}

// Tenants lists the tenants in creation order.
func (s *Sim) Tenants() []TenantInfo {
	s.mu.RLock()
	ids := slices.Clone(s.order)
	s.mu.RUnlock()

	out := make([]TenantInfo, 0, len(ids))
	for _, id := range ids {
		if t := s.tenant(id); t != nil {
			out = append(out, t.info())
		}
	}
	return out
}

// Tenant describes one tenant.
func (s *Sim) Tenant(id string) (TenantInfo, error) {
	t := s.tenant(id)
	if t == nil {
		return TenantInfo{}, fmt.Errorf("%w %q", ErrUnknownTenant, id)
	}
	return t.info(), nil
}

// AdminPassword is the generated password of a tenant's admin account, for
// `onesync dev` to print and for tests to sign in with.
func (s *Sim) AdminPassword(tenantID string) (string, error) {
	t := s.tenant(tenantID)
	if t == nil {
		return "", fmt.Errorf("%w %q", ErrUnknownTenant, tenantID)
	}
	return t.adminPassword, nil
}

// Consent marks a tenant as consented, as if its admin had accepted on the
// consent page, and installs the app. Tests use it to skip the browser.
func (s *Sim) Consent(tenantID string) error {
	t := s.tenant(tenantID)
	if t == nil {
		return fmt.Errorf("%w %q", ErrUnknownTenant, tenantID)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.consented, t.app = true, AppPresent
	return nil
}

// DeleteApp deletes the enterprise app from a tenant: new tokens fail with
// AADSTS7000229. Tokens issued before keep working until they expire.
func (s *Sim) DeleteApp(tenantID string) error { return s.SetApp(tenantID, AppDeleted) }

// RestoreApp puts the enterprise app back into a tenant.
func (s *Sim) RestoreApp(tenantID string) error { return s.SetApp(tenantID, AppPresent) }

// SetApp sets the state of the enterprise app in a tenant.
func (s *Sim) SetApp(tenantID string, st AppState) error {
	switch st {
	case AppPresent, AppDeleted, AppMissing, AppDisabled:
	default:
		return fmt.Errorf("app state %q is not present, deleted, missing or disabled", st)
	}
	t := s.tenant(tenantID)
	if t == nil {
		return fmt.Errorf("%w %q", ErrUnknownTenant, tenantID)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.app = st
	return nil
}

// SetRoles replaces the permissions granted in a tenant, for example to
// take Presence.Read.All away. Tokens issued afterwards carry them.
func (s *Sim) SetRoles(tenantID string, roles []string) error {
	t := s.tenant(tenantID)
	if t == nil {
		return fmt.Errorf("%w %q", ErrUnknownTenant, tenantID)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.roles = slices.Clone(roles)
	return nil
}

// SetSecretExpired makes the token endpoint answer AADSTS7000222 (secret
// expired) for every tenant while on.
func (s *Sim) SetSecretExpired(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secretExpired = on
}

// InjectThrottle makes the next n Graph requests of a tenant answer 429
// with Retry-After set to retryAfter (whole seconds; 0 sends no header).
func (s *Sim) InjectThrottle(tenantID string, n int, retryAfter time.Duration) error {
	if n < 0 || retryAfter < 0 {
		return errors.New("throttle count and delay must not be negative")
	}
	return s.withFaults(tenantID, func(f *faults) {
		f.throttleN, f.throttleAfter = n, retryAfter
	})
}

// InjectError makes the next n Graph requests of a tenant answer status
// with an OData error body. status must be 400 to 599.
func (s *Sim) InjectError(tenantID string, status, n int) error {
	if status < 400 || status > 599 || n < 0 {
		return fmt.Errorf("error status %d must be 400..599 and count %d not negative", status, n)
	}
	return s.withFaults(tenantID, func(f *faults) {
		f.errorStatus, f.errorN, f.errorEmpty = status, n, false
	})
}

// InjectEmptyError is InjectError with an empty body, as proxies and
// gateways sometimes answer.
func (s *Sim) InjectEmptyError(tenantID string, status, n int) error {
	if status < 400 || status > 599 || n < 0 {
		return fmt.Errorf("error status %d must be 400..599 and count %d not negative", status, n)
	}
	return s.withFaults(tenantID, func(f *faults) {
		f.errorStatus, f.errorN, f.errorEmpty = status, n, true
	})
}

// SetLatency delays every Graph request of a tenant by d.
func (s *Sim) SetLatency(tenantID string, d time.Duration) error {
	if d < 0 || d > time.Minute {
		return errors.New("latency must be between 0 and 1 minute")
	}
	return s.withFaults(tenantID, func(f *faults) { f.latency = d })
}

// FailID makes every presence request of a tenant that contains id fail
// with 400, as one public report saw for a deleted user's id.
func (s *Sim) FailID(tenantID, id string) error {
	if id == "" {
		return errors.New("failing id is empty")
	}
	return s.withFaults(tenantID, func(f *faults) {
		if f.failIDs == nil {
			f.failIDs = make(map[string]bool)
		}
		f.failIDs[strings.ToLower(id)] = true
	})
}

// ClearFaults removes every injected fault of a tenant.
func (s *Sim) ClearFaults(tenantID string) error {
	return s.withFaults(tenantID, func(f *faults) { *f = faults{} })
}

// RequestCounts returns what a tenant received so far.
func (s *Sim) RequestCounts(tenantID string) (RequestCounts, error) {
	t := s.tenant(tenantID)
	if t == nil {
		return RequestCounts{}, fmt.Errorf("%w %q", ErrUnknownTenant, tenantID)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts, nil
}

func (s *Sim) withFaults(tenantID string, fn func(*faults)) error {
	t := s.tenant(tenantID)
	if t == nil {
		return fmt.Errorf("%w %q", ErrUnknownTenant, tenantID)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	fn(&t.faults)
	return nil
}

func (s *Sim) tenant(id string) *tenant {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tenants[strings.ToLower(id)]
}

// tenantByName finds a tenant by id or by its domain, as Entra accepts
// either in the token path.
func (s *Sim) tenantByName(name string) *tenant {
	if t := s.tenant(name); t != nil {
		return t
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, t := range s.tenants {
		if strings.EqualFold(t.domain, name) {
			return t
		}
	}
	return nil
}

func (s *Sim) tenantByAdmin(email string) *tenant {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, t := range s.tenants {
		if strings.EqualFold(t.adminEmail, email) {
			return t
		}
	}
	return nil
}

func (s *Sim) addTenant(t *tenant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tenants[t.id] = t
	s.order = append(s.order, t.id)
}

func (t *tenant) info() TenantInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, u := range t.users {
		if !u.deleted {
			n++
		}
	}
	return TenantInfo{ID: t.id, Name: t.name, Domain: t.domain, AdminEmail: t.adminEmail,
		Users: n, Consented: t.consented, App: t.app, Roles: slices.Clone(t.roles)}
}

// liveUsers are the tenant's users that were not removed, by name, for the
// control page. The caller holds t.mu.
func (t *tenant) liveUsers() []*user {
	out := make([]*user, 0, len(t.users))
	for _, u := range t.users {
		if !u.deleted {
			out = append(out, u)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].DisplayName < out[j].DisplayName })
	return out
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("graphsim: crypto/rand: %v", err))
	}
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }
