// Package client implements graph.API on msgraph-sdk-go. It keeps one
// Graph service client per tenant, each authenticated with that tenant's
// app-only token from graph.TokenSource, sends every request through the
// shared graph.Budget, waits out Retry-After, and turns every SDK error into
// a *graph.Error for graph.Classify. It never logs tokens or the secret.
//
// This package compiles msgraph-sdk-go, which is slow the first time; code
// that only needs Graph's types imports package graph instead.
package client

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoft/kiota-abstractions-go/authentication"
	absser "github.com/microsoft/kiota-abstractions-go/serialization"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphgocore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/communications"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
	"go.uber.org/zap"

	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/presence"
)

// userFields are the user properties OneSync reads: those of graph.User.
var userFields = []string{"id", "displayName", "mail", "userPrincipalName",
	"businessPhones", "mobilePhone", "accountEnabled", "userType"}

// memberFilter asks Graph for enabled members only; ListUsers checks again.
const memberFilter = "accountEnabled eq true and userType eq 'Member'"

// maxPages bounds a paged read, so that a service that keeps answering
// with a next link cannot keep a sync busy forever.
const maxPages = 10000

// presenceSessionTTL is how long a SetPresence session lasts at Graph
// unless set again; Graph's default.
const presenceSessionTTL = "PT5M"

// Client is the msgraph-sdk-go implementation of graph.API. It is safe for
// concurrent use by many tenants.
type Client struct {
	cfg        graph.Config
	tokens     *graph.TokenSource
	budget     *graph.Budget
	log        *zap.Logger
	httpClient *http.Client
	graphHost  string
	maxRetries int

	mu      sync.Mutex
	tenants map[string]*msgraphsdk.GraphServiceClient
}

var _ graph.API = (*Client)(nil)

// Option changes a Client made by New.
type Option func(*Client)

// WithBudget shares a request budget, for example among the clients of
// one process; by default each Client has its own, built from the Config.
func WithBudget(b *graph.Budget) Option { return func(c *Client) { c.budget = b } }

// WithTokenSource shares a token source and its cache.
func WithTokenSource(ts *graph.TokenSource) Option { return func(c *Client) { c.tokens = ts } }

// WithMaxRetries sets how often one request is retried after a throttled or
// transient failure (default 3).
func WithMaxRetries(n int) Option { return func(c *Client) { c.maxRetries = max(0, n) } }

// New returns a client for cfg, which must be valid.
func New(cfg graph.Config, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("graph client: %w", err)
	}
	cfg = cfg.WithDefaults()
	base, err := url.Parse(cfg.GraphBaseURL)
	if err != nil {
		return nil, fmt.Errorf("graph client: parse base url: %w", err)
	}

	c := &Client{
		cfg:        cfg,
		log:        cfg.Logger,
		graphHost:  base.Hostname(),
		maxRetries: 3,
		tenants:    make(map[string]*msgraphsdk.GraphServiceClient),
	}
	for _, o := range opts {
		o(c)
	}
	if c.tokens == nil {
		if c.tokens, err = graph.NewTokenSource(cfg); err != nil {
			return nil, fmt.Errorf("graph client: %w", err)
		}
	}
	if c.budget == nil {
		c.budget = graph.NewBudget(cfg.GlobalRate, 0, 0)
	}
	c.httpClient = sdkHTTPClient(cfg.HTTPClient)
	return c, nil
}

// errorBodyGuard drops the body of an error answer that is not JSON (an
// HTML page from a gateway, plain text, a cut-off body). The SDK can parse
// only JSON error bodies; on anything else it returns an error without the
// HTTP status, and a 429 or 403 would then be classified as unknown. With
// the body gone the SDK reports the status and headers, which is all the
// classifier needs.
type errorBodyGuard struct{ next http.RoundTripper }

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 1 << 20

func (g errorBodyGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := g.next.RoundTrip(r)
	if err != nil || resp.StatusCode < http.StatusBadRequest {
		return resp, err
	}
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	ct := resp.Header.Get("Content-Type")
	if readErr == nil && strings.Contains(ct, "json") && json.Valid(body) {
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, nil
	}
	resp.Body = http.NoBody
	resp.ContentLength = 0
	resp.Header.Del("Content-Type")
	resp.Header.Del("Content-Length")
	return resp, nil
}

// sdkHTTPClient is the Graph SDK's middleware pipeline without its retry
// handler, on top of the configured client's transport: retries go through
// the budget and Retry-After handling of this package instead, so that
// every request is counted and paused per tenant.
func sdkHTTPClient(base *http.Client) *http.Client {
	opts := msgraphsdk.GetDefaultClientOptions()
	middlewares := slices.DeleteFunc(msgraphgocore.GetDefaultMiddlewaresWithOptions(&opts),
		func(m khttp.Middleware) bool {
			_, retry := m.(*khttp.RetryHandler)
			return retry
		})
	parent := base.Transport
	if parent == nil {
		parent = http.DefaultTransport
	}
	return &http.Client{
		Transport: khttp.NewCustomTransportWithParentTransport(errorBodyGuard{parent},
			middlewares...),
		Timeout: base.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// service returns the tenant's Graph service client, made on first use.
func (c *Client) service(tenant string) (*msgraphsdk.GraphServiceClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.tenants[tenant]; ok {
		return s, nil
	}

	provider := &tokenProvider{tokens: c.tokens, tenant: tenant,
		hosts: authentication.NewAllowedHostsValidator([]string{c.graphHost})}
	auth := authentication.NewBaseBearerTokenAuthenticationProvider(provider)
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(
		auth, nil, nil, c.httpClient)
	if err != nil {
		return nil, fmt.Errorf("graph adapter for tenant %s: %w", tenant, err)
	}
	adapter.SetBaseUrl(c.cfg.GraphBaseURL)
	s := msgraphsdk.NewGraphServiceClient(adapter)
	c.tenants[tenant] = s
	return s, nil
}

// tokenProvider is a kiota access token provider bound to one tenant. It
// hands the token only to the configured Graph host.
type tokenProvider struct {
	tokens *graph.TokenSource
	tenant string
	hosts  authentication.AllowedHostsValidator
}

// GetAuthorizationToken returns the tenant's token for a Graph URL.
func (p *tokenProvider) GetAuthorizationToken(ctx context.Context, u *url.URL,
	_ map[string]any) (string, error) {
	if !p.hosts.IsUrlHostValid(u) {
		return "", &graph.Error{Op: "token", Tenant: p.tenant, Code: "host_not_allowed",
			Message: "refusing to send a token to " + u.Host}
	}
	tok, err := p.tokens.Token(ctx, p.tenant)
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// GetAllowedHostsValidator returns the hosts that may receive the token.
func (p *tokenProvider) GetAllowedHostsValidator() *authentication.AllowedHostsValidator {
	return &p.hosts
}

// call runs one Graph request for tenant within the budget, retrying
// throttled and transient failures. A 429 pauses only this tenant for its
// Retry-After. requests, when not nil, counts every attempt sent.
func (c *Client) call(ctx context.Context, tenant, op string, presenceRead bool,
	requests *int, fn func(context.Context, *msgraphsdk.GraphServiceClient) error) error {
	if !graph.ValidTenantID(tenant) {
		return &graph.Error{Op: op, Tenant: tenant, Code: "invalid_tenant",
			Message: "tenant id is not a GUID"}
	}
	svc, err := c.service(tenant)
	if err != nil {
		return err
	}

	for attempt := 1; ; attempt++ {
		if presenceRead {
			err = c.budget.WaitPresence(ctx, tenant)
		} else {
			err = c.budget.Wait(ctx, tenant)
		}
		if err != nil {
			return &graph.Error{Op: op, Tenant: tenant, Err: err}
		}
		if requests != nil {
			*requests++
		}

		err = fn(ctx, svc)
		if err == nil {
			return nil
		}
		gerr := toError(op, tenant, err)
		f := graph.Classify(gerr)
		retry := f.Retryable() && attempt <= c.maxRetries

		switch f.Class {
		case graph.ClassThrottled:
			wait := f.Wait(attempt)
			c.budget.Pause(tenant, wait)
			c.log.Warn("graph throttled tenant", zap.String("tenant", tenant),
				zap.String("op", op), zap.Duration("retry_after", wait),
				zap.Bool("retrying", retry))
		case graph.ClassTransient:
			if retry {
				if err := sleep(ctx, graph.Backoff(attempt)); err != nil {
					return gerr
				}
			}
		case graph.ClassCredentials:
			if gerr.Op != "token" {
				// Graph refused a token Entra issued: fetch a new one next
				// time instead of sending the refused one again.
				c.tokens.Forget(tenant)
			}
		}
		if !retry {
			return gerr
		}
	}
}

// VerifyConsent confirms that tenant granted OneSync's permissions: an
// app-only token for it is obtained, its tid is the tenant (checked by the
// token source), its roles hold graph.Permissions, and one cheap Graph read
// succeeds.
func (c *Client) VerifyConsent(ctx context.Context, tenant string) (graph.Consent, error) {
	var tok graph.AppToken
	err := c.call(ctx, tenant, "token", false, nil,
		func(ctx context.Context, _ *msgraphsdk.GraphServiceClient) error {
			var err error
			tok, err = c.tokens.Token(ctx, tenant)
			return err
		})
	if err != nil {
		return graph.Consent{}, err
	}
	if !tok.HasRoles(graph.Permissions...) {
		return graph.Consent{}, &graph.Error{Op: "verify consent", Tenant: tenant,
			Status: http.StatusForbidden, Code: "missing_roles",
			Message: fmt.Sprintf("token roles %v lack one of %v", tok.Roles, graph.Permissions)}
	}

	top := int32(1)
	err = c.call(ctx, tenant, "verify consent", false, nil,
		func(ctx context.Context, s *msgraphsdk.GraphServiceClient) error {
			_, err := s.Users().Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{
				QueryParameters: &users.UsersRequestBuilderGetQueryParameters{
					Select: []string{"id"}, Top: &top},
			})
			return err
		})
	if err != nil {
		return graph.Consent{}, err
	}
	return graph.Consent{TenantID: tok.TenantID, Roles: slices.Clone(tok.Roles)}, nil
}

// ListUsers returns every enabled member of tenant, reading all pages of
// 999 users.
func (c *Client) ListUsers(ctx context.Context, tenant string) ([]graph.User, error) {
	var out []graph.User
	top := int32(999)
	filter := memberFilter
	next := ""

	for page := 0; ; page++ {
		if page == maxPages {
			return nil, &graph.Error{Op: "list users", Tenant: tenant, Code: "too_many_pages",
				Message: fmt.Sprintf("more than %d pages", maxPages)}
		}
		var resp models.UserCollectionResponseable
		err := c.call(ctx, tenant, "list users", false, nil,
			func(ctx context.Context, s *msgraphsdk.GraphServiceClient) error {
				var err error
				if next == "" {
					resp, err = s.Users().Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{
						QueryParameters: &users.UsersRequestBuilderGetQueryParameters{
							Select: userFields, Filter: &filter, Top: &top},
					})
				} else {
					resp, err = s.Users().WithUrl(next).Get(ctx, nil)
				}
				return err
			})
		if err != nil {
			return nil, err
		}
		if resp == nil {
			break
		}
		for _, u := range resp.GetValue() {
			if gu, ok := toUser(u); ok && gu.Member() {
				out = append(out, gu)
			}
		}
		link := deref(resp.GetOdataNextLink())
		if link == "" {
			break
		}
		if link == next {
			return nil, &graph.Error{Op: "list users", Tenant: tenant, Code: "paging_loop",
				Message: "the next link repeats"}
		}
		if err := c.checkLink(link); err != nil {
			return nil, &graph.Error{Op: "list users", Tenant: tenant, Code: "bad_next_link",
				Err: err}
		}
		next = link
	}
	return out, nil
}

// UserChanges returns what changed in tenant's directory since deltaLink,
// following every page up to the new delta link. An empty deltaLink starts
// a delta: every user comes back as changed. Changed users include those
// that were disabled or are guests; callers check graph.User.Member.
// Users deleted since come back in Removed.
func (c *Client) UserChanges(ctx context.Context, tenant, deltaLink string) (graph.UserDelta, error) {
	if deltaLink != "" {
		if err := c.checkLink(deltaLink); err != nil {
			return graph.UserDelta{}, &graph.Error{Op: "user changes", Tenant: tenant,
				Code: "bad_delta_link", Err: err}
		}
	}
	var delta graph.UserDelta
	next := deltaLink

	for page := 0; ; page++ {
		if page == maxPages {
			return graph.UserDelta{}, &graph.Error{Op: "user changes", Tenant: tenant,
				Code: "too_many_pages", Message: fmt.Sprintf("more than %d pages", maxPages)}
		}
		var resp users.DeltaGetResponseable
		err := c.call(ctx, tenant, "user changes", false, nil,
			func(ctx context.Context, s *msgraphsdk.GraphServiceClient) error {
				var err error
				if next == "" {
					resp, err = s.Users().Delta().GetAsDeltaGetResponse(ctx,
						&users.DeltaRequestBuilderGetRequestConfiguration{
							QueryParameters: &users.DeltaRequestBuilderGetQueryParameters{
								Select: userFields},
						})
				} else {
					resp, err = s.Users().Delta().WithUrl(next).GetAsDeltaGetResponse(ctx, nil)
				}
				return err
			})
		if err != nil {
			return graph.UserDelta{}, err
		}
		if resp == nil {
			return graph.UserDelta{}, &graph.Error{Op: "user changes", Tenant: tenant,
				Code: "empty_response", Message: "delta answered without a body"}
		}
		for _, u := range resp.GetValue() {
			if u == nil {
				continue
			}
			if _, removed := u.GetAdditionalData()["@removed"]; removed {
				if id := deref(u.GetId()); id != "" {
					delta.Removed = append(delta.Removed, id)
				}
				continue
			}
			if gu, ok := toUser(u); ok {
				delta.Changed = append(delta.Changed, gu)
			}
		}
		if link := deref(resp.GetOdataDeltaLink()); link != "" {
			delta.DeltaLink = link
			return delta, nil
		}
		link := deref(resp.GetOdataNextLink())
		if link == "" || link == next {
			return graph.UserDelta{}, &graph.Error{Op: "user changes", Tenant: tenant,
				Code: "no_delta_link", Message: "delta ended without a delta link"}
		}
		if err := c.checkLink(link); err != nil {
			return graph.UserDelta{}, &graph.Error{Op: "user changes", Tenant: tenant,
				Code: "bad_next_link", Err: err}
		}
		next = link
	}
}

// ForgetToken drops the tenant's cached app-only token, so that its next
// request asks Entra for a new one. A token outlives the deletion of the
// enterprise app by up to an hour; SyncPresence calls this at the start of
// every window so that a revocation is seen within one window (C7).
func (c *Client) ForgetToken(tenant string) { c.tokens.Forget(tenant) }

// Presences reads the presence of ids in batches of at most
// graph.MaxPresenceIDs. A batch that fails with 400 or 404 is split until
// the bad id is alone, so one bad id never stops the tenant; a batch that
// fails otherwise is listed in Failed and the others carry on. Ids Graph
// leaves out of its answer are listed in Failed as not found. The error is
// non-nil only when the whole tenant failed (revoked, wrong credentials,
// missing permission, cancelled): then the remaining batches are not sent.
func (c *Client) Presences(ctx context.Context, tenant string, ids []string) (graph.PresenceResult, error) {
	ids = dedupe(ids)
	var batches [][]string
	for start := 0; start < len(ids); start += graph.MaxPresenceIDs {
		batches = append(batches, ids[start:min(start+graph.MaxPresenceIDs, len(ids))])
	}

	// The batches of a large tenant are read a few at a time, so that a
	// poll of 5,000 users takes about two round trips rather than eight;
	// the budget still spaces every request.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parts := make([]graph.PresenceResult, len(batches))
	errs := make([]error, len(batches))
	splits := &splitBudget{left: maxSplitReads}
	sem := make(chan struct{}, presenceConcurrency)
	var wg sync.WaitGroup
	for i, batch := range batches {
		parts[i] = graph.PresenceResult{
			Presences: make(map[string]presence.Presence, len(batch)),
			Failed:    make(map[string]error),
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if ctx.Err() != nil {
				return
			}
			if errs[i] = c.presenceBatch(ctx, tenant, batch, &parts[i], splits); errs[i] != nil {
				cancel() // the whole tenant failed: send no more batches
			}
		}()
	}
	wg.Wait()

	res := graph.PresenceResult{
		Presences: make(map[string]presence.Presence, len(ids)),
		Failed:    make(map[string]error),
	}
	for i := range parts {
		maps.Copy(res.Presences, parts[i].Presences)
		maps.Copy(res.Failed, parts[i].Failed)
		res.Requests += parts[i].Requests
	}
	// The batch that failed the tenant cancelled the others; its error is
	// the one that says why.
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if graph.Classify(err).Class != graph.ClassCanceled {
			return res, err
		}
		first = cmp.Or(first, err)
	}
	return res, first
}

// presenceConcurrency is how many presence batches of one tenant are read
// at once.
const presenceConcurrency = 4

// maxSplitReads bounds the extra reads one Presences call spends on
// splitting batches that Graph refused with 400 or 404. One bad id among
// 650 costs about 20; the bound isolates a few bad ids per poll, while an
// endpoint that refuses everything costs at most this many reads, not one
// per id, and stays far inside the tenant's 1,500 requests per 30 s.
const maxSplitReads = 64

// splitBudget is what is left of maxSplitReads, shared by the batches of
// one Presences call.
type splitBudget struct {
	mu   sync.Mutex
	left int
}

// take spends n reads if that many are left.
func (b *splitBudget) take(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.left < n {
		return false
	}
	b.left -= n
	return true
}

// presenceBatch reads one batch into res. A batch refused with 400 or 404
// is split in halves to isolate the bad id, while splits (shared by the
// whole Presences call) lasts. It returns an error only for a failure of
// the whole tenant.
func (c *Client) presenceBatch(ctx context.Context, tenant string, ids []string,
	res *graph.PresenceResult, splits *splitBudget) error {
	var resp communications.GetPresencesByUserIdPostResponseable
	err := c.call(ctx, tenant, "presences", true, &res.Requests,
		func(ctx context.Context, s *msgraphsdk.GraphServiceClient) error {
			body := communications.NewGetPresencesByUserIdPostRequestBody()
			body.SetIds(ids)
			var err error
			resp, err = s.Communications().GetPresencesByUserId().
				PostAsGetPresencesByUserIdPostResponse(ctx, body, nil)
			return err
		})
	if err != nil {
		switch graph.Classify(err).Class {
		case graph.ClassRevoked, graph.ClassCredentials, graph.ClassPermission,
			graph.ClassCanceled:
			return err
		case graph.ClassBadRequest, graph.ClassNotFound:
			if len(ids) > 1 && splits.take(2) {
				half := len(ids) / 2
				if err := c.presenceBatch(ctx, tenant, ids[:half], res, splits); err != nil {
					return err
				}
				return c.presenceBatch(ctx, tenant, ids[half:], res, splits)
			}
		}
		for _, id := range ids {
			res.Failed[id] = err
		}
		return nil
	}

	seen := make(map[string]bool, len(ids))
	if resp != nil {
		for _, p := range resp.GetValue() {
			if p == nil {
				continue
			}
			id := deref(p.GetId())
			if id == "" {
				continue
			}
			res.Presences[id] = toPresence(p)
			seen[strings.ToLower(id)] = true
		}
	}
	for _, id := range ids {
		if !seen[strings.ToLower(id)] {
			res.Failed[id] = &graph.Error{Op: "presences", Tenant: tenant,
				Status: http.StatusNotFound, Code: "NotInAnswer",
				Message: "Graph returned no presence for this id"}
		}
	}
	return nil
}

// SetPresence sets the user's presence in OneSync's own presence session
// (session id = client id) for five minutes; callers repeat it to keep it.
func (c *Client) SetPresence(ctx context.Context, tenant, userID string, p presence.Presence) error {
	if userID == "" || p.Availability == "" || p.Activity == "" {
		return &graph.Error{Op: "set presence", Tenant: tenant, Code: "invalid_argument",
			Message: "user id, availability and activity are required"}
	}
	ttl, err := absser.ParseISODuration(presenceSessionTTL)
	if err != nil {
		return fmt.Errorf("set presence: parse session lifetime: %w", err)
	}
	return c.call(ctx, tenant, "set presence", false, nil,
		func(ctx context.Context, s *msgraphsdk.GraphServiceClient) error {
			body := users.NewItemPresenceSetPresencePostRequestBody()
			body.SetSessionId(&c.cfg.ClientID)
			body.SetAvailability(&p.Availability)
			body.SetActivity(&p.Activity)
			body.SetExpirationDuration(ttl)
			return s.Users().ByUserId(userID).Presence().SetPresence().Post(ctx, body, nil)
		})
}

// ClearPresence ends OneSync's presence session for the user.
func (c *Client) ClearPresence(ctx context.Context, tenant, userID string) error {
	if userID == "" {
		return &graph.Error{Op: "clear presence", Tenant: tenant, Code: "invalid_argument",
			Message: "user id is required"}
	}
	return c.call(ctx, tenant, "clear presence", false, nil,
		func(ctx context.Context, s *msgraphsdk.GraphServiceClient) error {
			body := users.NewItemPresenceClearPresencePostRequestBody()
			body.SetSessionId(&c.cfg.ClientID)
			return s.Users().ByUserId(userID).Presence().ClearPresence().Post(ctx, body, nil)
		})
}

// checkLink refuses a next or delta link that does not point at the
// configured Graph base URL.
func (c *Client) checkLink(link string) error {
	if !strings.HasPrefix(link, c.cfg.GraphBaseURL+"/") {
		return fmt.Errorf("link %q is not under %s", link, c.cfg.GraphBaseURL)
	}
	return nil
}

// toError converts an SDK error into a *graph.Error, reading the status,
// Retry-After and OData code without trusting any accessor to be non-nil.
func toError(op, tenant string, err error) *graph.Error {
	var ge *graph.Error
	if errors.As(err, &ge) && ge != nil {
		out := *ge
		if out.Op == "" {
			out.Op = op
		}
		if out.Tenant == "" {
			out.Tenant = tenant
		}
		return &out
	}

	out := &graph.Error{Op: op, Tenant: tenant, Err: err}
	var oe *odataerrors.ODataError
	if errors.As(err, &oe) && oe != nil {
		out.Status = oe.ResponseStatusCode
		out.RetryAfter = retryAfter(oe.ResponseHeaders)
		out.Code, out.Message = odataMain(oe)
		out.Err = nil
		return out
	}
	var ae *abs.ApiError
	if errors.As(err, &ae) && ae != nil {
		out.Status = ae.ResponseStatusCode
		out.RetryAfter = retryAfter(ae.ResponseHeaders)
		out.Message = ae.Message
		out.Err = nil
		return out
	}
	var ar abs.ApiErrorable
	if errors.As(err, &ar) && ar != nil {
		safely(func() {
			out.Status = ar.GetStatusCode()
			out.RetryAfter = retryAfter(ar.GetResponseHeaders())
		})
	}
	return out
}

// odataMain reads the code and message of an OData error; generated
// accessors panic on a nil receiver, so each read is guarded.
func odataMain(oe *odataerrors.ODataError) (code, msg string) {
	safely(func() {
		main := oe.GetErrorEscaped()
		if main == nil {
			return
		}
		code = deref(main.GetCode())
		msg = deref(main.GetMessage())
	})
	return code, msg
}

func retryAfter(h *abs.ResponseHeaders) (d time.Duration) {
	if h == nil {
		return 0
	}
	safely(func() {
		if v := h.Get("Retry-After"); len(v) > 0 {
			d = graph.ParseRetryAfter(v[0], time.Now())
		}
	})
	return d
}

// safely runs fn and swallows a panic from an SDK accessor.
func safely(fn func()) {
	defer func() { _ = recover() }()
	fn()
}

func toUser(u models.Userable) (out graph.User, ok bool) {
	if u == nil {
		return graph.User{}, false
	}
	safely(func() {
		out = graph.User{
			ID:             deref(u.GetId()),
			DisplayName:    deref(u.GetDisplayName()),
			Mail:           deref(u.GetMail()),
			UPN:            deref(u.GetUserPrincipalName()),
			BusinessPhones: slices.Clone(u.GetBusinessPhones()),
			MobilePhone:    deref(u.GetMobilePhone()),
			AccountEnabled: derefBool(u.GetAccountEnabled()),
			UserType:       deref(u.GetUserType()),
		}
		ok = out.ID != ""
	})
	return out, ok
}

func toPresence(p models.Presenceable) (out presence.Presence) {
	safely(func() {
		out.Availability = deref(p.GetAvailability())
		out.Activity = deref(p.GetActivity())
		if oof := p.GetOutOfOfficeSettings(); oof != nil {
			out.OutOfOffice = derefBool(oof.GetIsOutOfOffice())
		}
	})
	return out
}

func dedupe(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		key := strings.ToLower(id)
		if id == "" || seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, id)
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefBool(b *bool) bool { return b != nil && *b }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
