package graphsim

import (
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/presence"
)

// routes builds the handler: Graph under /v1.0/, the control pages under
// /control, Entra everywhere else.
func (s *Sim) routes() http.Handler {
	entra := http.NewServeMux()
	entra.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.tokenEndpoint)
	entra.HandleFunc("GET /organizations/v2.0/adminconsent", s.adminConsentGet)
	entra.HandleFunc("POST /organizations/v2.0/adminconsent", s.adminConsentPost)

	api := http.NewServeMux()
	api.HandleFunc("GET /v1.0/users", s.listUsers)
	api.HandleFunc("GET /v1.0/users/delta", s.usersDelta)
	api.HandleFunc("GET /v1.0/users/delta()", s.usersDelta) // the SDK's spelling
	api.HandleFunc("GET /v1.0/users/{id}/presence", s.getPresence)
	api.HandleFunc("POST /v1.0/users/{id}/presence/setPresence", s.setPresence)
	api.HandleFunc("POST /v1.0/users/{id}/presence/clearPresence", s.clearPresence)
	api.HandleFunc("POST /v1.0/communications/getPresencesByUserId", s.getPresences)
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeOData(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf(
			"Resource not found for the segment '%s'.", strings.TrimPrefix(r.URL.Path, "/v1.0/")))
	})

	control := s.controlRoutes()

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case strings.HasPrefix(p, "/v1.0/"):
			api.ServeHTTP(w, r)
		case p == "/control" || strings.HasPrefix(p, "/control/") || p == "/":
			control.ServeHTTP(w, r)
		default:
			entra.ServeHTTP(w, r)
		}
	})
}

// Endpoint kinds for counting and role checks.
const (
	kindUsers         = "users"
	kindDelta         = "delta"
	kindPresences     = "presences"
	kindPresence      = "presence"
	kindSetPresence   = "setPresence"
	kindClearPresence = "clearPresence"
)

// graphCall authenticates a Graph request, applies the tenant's injected
// faults and checks the role. It answers the request itself and returns
// nil when the request must go no further.
func (s *Sim) graphCall(w http.ResponseWriter, r *http.Request, kind string,
	roles ...string) *tenant {
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || token == "" {
		writeOData(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken",
			"Access token is empty.")
		return nil
	}
	claims, problem := s.parseToken(token, time.Now())
	if problem != "" {
		writeOData(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken", problem)
		return nil
	}
	t := s.tenant(claims.Tid)
	if t == nil {
		writeOData(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken",
			"Access token validation failure. Invalid issuer.")
		return nil
	}

	t.mu.Lock()
	latency := t.faults.latency
	t.mu.Unlock()
	if latency > 0 {
		timer := time.NewTimer(latency)
		select {
		case <-timer.C:
		case <-r.Context().Done():
			timer.Stop()
			return nil
		}
	}

	t.mu.Lock()
	t.count(kind)
	f := &t.faults
	if f.errorN > 0 {
		f.errorN--
		t.counts.Failed++
		status, empty := f.errorStatus, f.errorEmpty
		t.mu.Unlock()
		if empty {
			w.WriteHeader(status)
			return nil
		}
		writeInjectedError(w, r, status)
		return nil
	}
	if f.throttleN > 0 {
		f.throttleN--
		t.counts.Throttled++
		after := f.throttleAfter
		t.mu.Unlock()
		writeThrottled(w, r, after)
		return nil
	}
	t.mu.Unlock()

	if len(roles) > 0 && !slices.ContainsFunc(roles, func(r string) bool {
		return slices.Contains(claims.Roles, r)
	}) {
		writeOData(w, r, http.StatusForbidden, "Forbidden",
			"Insufficient privileges to complete the operation.")
		return nil
	}
	return t
}

func (t *tenant) count(kind string) {
	switch kind {
	case kindUsers:
		t.counts.Users++
	case kindDelta:
		t.counts.Delta++
	case kindPresences:
		t.counts.Presences++
	case kindPresence:
		t.counts.Presence++
	case kindSetPresence:
		t.counts.SetPresence++
	case kindClearPresence:
		t.counts.ClearPresence++
	}
}

// userProps are the user properties the simulator knows, for $select.
var userProps = map[string]func(u *user) any{
	"id":                func(u *user) any { return u.ID },
	"displayName":       func(u *user) any { return u.DisplayName },
	"givenName":         func(u *user) any { return u.givenName },
	"surname":           func(u *user) any { return u.surname },
	"mail":              func(u *user) any { return nullable(u.Mail) },
	"userPrincipalName": func(u *user) any { return u.UPN },
	"businessPhones":    func(u *user) any { return append([]string{}, u.BusinessPhones...) },
	"mobilePhone":       func(u *user) any { return nullable(u.MobilePhone) },
	"accountEnabled":    func(u *user) any { return u.AccountEnabled },
	"userType":          func(u *user) any { return u.UserType },
	"jobTitle":          func(u *user) any { return nullable(u.jobTitle) },
	"officeLocation":    func(u *user) any { return nil },
	"preferredLanguage": func(u *user) any { return "fi-FI" },
}

// defaultUserProps is what Graph returns without $select.
var defaultUserProps = []string{"businessPhones", "displayName", "givenName", "jobTitle",
	"mail", "mobilePhone", "officeLocation", "preferredLanguage", "surname",
	"userPrincipalName", "id"}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func parseSelect(raw string) ([]string, error) {
	if raw == "" {
		return defaultUserProps, nil
	}
	var out []string
	for _, p := range strings.Split(raw, ",") {
		p = strings.TrimSpace(p)
		if _, ok := userProps[p]; !ok {
			return nil, fmt.Errorf("Could not find a property named '%s' on type "+
				"'Microsoft.DirectoryServices.User'.", p)
		}
		out = append(out, p)
	}
	return out, nil
}

func project(u *user, props []string) map[string]any {
	m := make(map[string]any, len(props))
	for _, p := range props {
		m[p] = userProps[p](u)
	}
	return m
}

var filterClause = regexp.MustCompile(`^(accountEnabled|userType) eq (true|false|'[A-Za-z]+')$`)

// userFilter is a parsed $filter: the conjunction of eq clauses on
// accountEnabled and userType, all that the simulator supports.
type userFilter struct {
	enabled  *bool
	userType string
}

func parseFilter(raw string) (userFilter, error) {
	var f userFilter
	if strings.TrimSpace(raw) == "" {
		return f, nil
	}
	for _, clause := range strings.Split(raw, " and ") {
		m := filterClause.FindStringSubmatch(strings.TrimSpace(clause))
		if m == nil {
			return f, fmt.Errorf("Unsupported or invalid query filter clause: %s", clause)
		}
		switch m[1] {
		case "accountEnabled":
			if m[2] != "true" && m[2] != "false" {
				return f, fmt.Errorf("Invalid filter clause: accountEnabled takes true or false")
			}
			v := m[2] == "true"
			f.enabled = &v
		case "userType":
			if !strings.HasPrefix(m[2], "'") {
				return f, fmt.Errorf("Invalid filter clause: userType takes a string")
			}
			f.userType = strings.Trim(m[2], "'")
		}
	}
	return f, nil
}

func (f userFilter) match(u *user) bool {
	if f.enabled != nil && u.AccountEnabled != *f.enabled {
		return false
	}
	return f.userType == "" || strings.EqualFold(u.UserType, f.userType)
}

// pageToken is the content of a $skiptoken or $deltatoken: opaque to
// clients, bound to a tenant.
type pageToken struct {
	Tenant string `json:"t"`
	Offset int    `json:"o,omitempty"`
	Since  int64  `json:"s,omitempty"`
	Upto   int64  `json:"u,omitempty"`
}

func encodeToken(p pageToken) string {
	b, _ := json.Marshal(p)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(raw, tenantID string) (pageToken, bool) {
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return pageToken{}, false
	}
	var p pageToken
	if json.Unmarshal(b, &p) != nil || p.Tenant != tenantID || p.Offset < 0 {
		return pageToken{}, false
	}
	return p, true
}

// listUsers serves GET /v1.0/users with $select, $filter, $top and paging.
func (s *Sim) listUsers(w http.ResponseWriter, r *http.Request) {
	t := s.graphCall(w, r, kindUsers, "User.Read.All", "Directory.Read.All")
	if t == nil {
		return
	}
	q := r.URL.Query()

	top := 100
	if raw := q.Get("$top"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 999 {
			writeOData(w, r, http.StatusBadRequest, "Request_UnsupportedQuery", fmt.Sprintf(
				"Invalid page size specified: '%s'. Must be between 1 and 999 inclusive.", raw))
			return
		}
		top = n
	}
	props, err := parseSelect(q.Get("$select"))
	if err != nil {
		writeOData(w, r, http.StatusBadRequest, "Request_BadRequest", err.Error())
		return
	}
	filter, err := parseFilter(q.Get("$filter"))
	if err != nil {
		writeOData(w, r, http.StatusBadRequest, "Request_UnsupportedQuery", err.Error())
		return
	}
	offset := 0
	if raw := q.Get("$skiptoken"); raw != "" {
		tok, ok := decodeToken(raw, t.id)
		if !ok {
			writeOData(w, r, http.StatusBadRequest, "Request_BadRequest",
				"Invalid paging token specified.")
			return
		}
		offset = tok.Offset
	}

	t.mu.Lock()
	page := make([]map[string]any, 0, min(top, len(t.users)))
	next := -1
	for i := offset; i < len(t.users); i++ {
		u := t.users[i]
		if u.deleted || !filter.match(u) {
			continue
		}
		if len(page) == top {
			next = i
			break
		}
		page = append(page, project(u, props))
	}
	t.mu.Unlock()

	body := map[string]any{
		"@odata.context": baseURL(r) + "/v1.0/$metadata#users(" + strings.Join(props, ",") + ")",
		"value":          page,
	}
	if next >= 0 {
		nq := url.Values{}
		for _, k := range []string{"$select", "$filter", "$top"} {
			if v := q.Get(k); v != "" {
				nq.Set(k, v)
			}
		}
		nq.Set("$skiptoken", encodeToken(pageToken{Tenant: t.id, Offset: next}))
		body["@odata.nextLink"] = baseURL(r) + "/v1.0/users?" + nq.Encode()
	}
	writeJSON(w, http.StatusOK, body)
}

// usersDelta serves GET /v1.0/users/delta: a full round without a token,
// then the changes since a $deltatoken; removed users carry @removed.
func (s *Sim) usersDelta(w http.ResponseWriter, r *http.Request) {
	t := s.graphCall(w, r, kindDelta, "User.Read.All", "Directory.Read.All")
	if t == nil {
		return
	}
	q := r.URL.Query()
	props, err := parseSelect(q.Get("$select"))
	if err != nil {
		writeOData(w, r, http.StatusBadRequest, "Request_BadRequest", err.Error())
		return
	}
	pageSize := 200
	if n, ok := maxPageSize(r.Header.Get("Prefer")); ok {
		pageSize = n
	}

	t.mu.Lock()
	defer t.mu.Unlock()

	tok := pageToken{Tenant: t.id, Upto: t.seq}
	for _, k := range []string{"$skiptoken", "$deltatoken"} {
		raw := q.Get(k)
		if raw == "" {
			continue
		}
		parsed, ok := decodeToken(raw, t.id)
		if !ok {
			writeOData(w, r, http.StatusBadRequest, "Request_BadRequest", "Badly formed token.")
			return
		}
		if k == "$deltatoken" {
			parsed = pageToken{Tenant: t.id, Since: parsed.Since, Upto: t.seq}
		}
		tok = parsed
	}

	page := make([]map[string]any, 0, pageSize)
	next := -1
	for i := tok.Offset; i < len(t.users); i++ {
		u := t.users[i]
		if u.changeSeq <= tok.Since || (u.deleted && tok.Since == 0) {
			continue
		}
		if len(page) == pageSize {
			next = i
			break
		}
		if u.deleted {
			page = append(page, map[string]any{"id": u.ID,
				"@removed": map[string]string{"reason": "changed"}})
			continue
		}
		page = append(page, project(u, props))
	}

	body := map[string]any{
		"@odata.context": baseURL(r) + "/v1.0/$metadata#users(" + strings.Join(props, ",") + ")",
		"value":          page,
	}
	nq := url.Values{}
	if v := q.Get("$select"); v != "" {
		nq.Set("$select", v)
	}
	if next >= 0 {
		tok.Offset = next
		nq.Set("$skiptoken", encodeToken(tok))
		body["@odata.nextLink"] = baseURL(r) + "/v1.0/users/delta?" + nq.Encode()
	} else {
		nq.Set("$deltatoken", encodeToken(pageToken{Tenant: t.id, Since: tok.Upto}))
		body["@odata.deltaLink"] = baseURL(r) + "/v1.0/users/delta?" + nq.Encode()
	}
	writeJSON(w, http.StatusOK, body)
}

func maxPageSize(prefer string) (int, bool) {
	for _, part := range strings.Split(prefer, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(part), "odata.maxpagesize=")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(v); err == nil && n >= 1 && n <= 999 {
			return n, true
		}
	}
	return 0, false
}

// presenceJSON is a presence as Graph serialises it.
type presenceJSON struct {
	ODataType     string          `json:"@odata.type"`
	ID            string          `json:"id"`
	Availability  string          `json:"availability"`
	Activity      string          `json:"activity"`
	StatusMessage *struct{}       `json:"statusMessage"`
	OutOfOffice   outOfOfficeJSON `json:"outOfOfficeSettings"`
}

type outOfOfficeJSON struct {
	Message       *string `json:"message"`
	IsOutOfOffice bool    `json:"isOutOfOffice"`
}

func toPresenceJSON(id string, p presence.Presence) presenceJSON {
	return presenceJSON{ODataType: "#microsoft.graph.presence", ID: id,
		Availability: p.Availability, Activity: p.Activity,
		OutOfOffice: outOfOfficeJSON{IsOutOfOffice: p.OutOfOffice}}
}

// getPresences serves POST /v1.0/communications/getPresencesByUserId.
func (s *Sim) getPresences(w http.ResponseWriter, r *http.Request) {
	t := s.graphCall(w, r, kindPresences, "Presence.Read.All", "Presence.ReadWrite.All")
	if t == nil {
		return
	}
	var body struct {
		IDs []string `json:"ids"`
	}
	if err := readJSON(r, &body); err != nil {
		writeOData(w, r, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	if len(body.IDs) == 0 {
		writeOData(w, r, http.StatusBadRequest, "BadRequest", "The ids list must not be empty.")
		return
	}
	if len(body.IDs) > graph.MaxPresenceIDs {
		writeOData(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf(
			"The number of ids %d exceeds the limit of %d.", len(body.IDs), graph.MaxPresenceIDs))
		return
	}
	for _, id := range body.IDs {
		if !graph.ValidTenantID(id) {
			writeOData(w, r, http.StatusBadRequest, "BadRequest",
				fmt.Sprintf("Invalid user id '%s'.", id))
			return
		}
	}

	now := time.Now()
	t.mu.Lock()
	if wait := t.admitPresence(now, s.opts.PresenceLimit, s.opts.PresenceWindow); wait > 0 {
		t.counts.Throttled++
		t.mu.Unlock()
		writeThrottled(w, r, wait)
		return
	}
	for _, id := range body.IDs {
		if t.faults.failIDs[strings.ToLower(id)] {
			t.counts.Failed++
			t.mu.Unlock()
			writeOData(w, r, http.StatusBadRequest, "BadRequest",
				fmt.Sprintf("Invalid user id '%s'.", id))
			return
		}
	}
	out := make([]presenceJSON, 0, len(body.IDs))
	for _, id := range body.IDs {
		u := t.byID[strings.ToLower(id)]
		if u == nil || u.deleted {
			continue // unknown ids are left out of the answer
		}
		out = append(out, toPresenceJSON(u.ID, u.effective(now)))
	}
	t.mu.Unlock()

	writeJSON(w, http.StatusOK, struct {
		Context string         `json:"@odata.context"`
		Value   []presenceJSON `json:"value"`
	}{baseURL(r) + "/v1.0/$metadata#Collection(microsoft.graph.presence)", out})
}

// admitPresence records a presence request arriving at now, or returns how
// long until the window has room. The caller holds t.mu.
func (t *tenant) admitPresence(now time.Time, limit int, window time.Duration) time.Duration {
	if len(t.window) < limit {
		t.window = append(t.window, now)
		return 0
	}
	oldest := t.window[t.windowPos]
	if wait := oldest.Add(window).Sub(now); wait > 0 {
		return wait
	}
	t.window[t.windowPos] = now
	t.windowPos = (t.windowPos + 1) % limit
	return 0
}

// getPresence serves GET /v1.0/users/{id}/presence.
func (s *Sim) getPresence(w http.ResponseWriter, r *http.Request) {
	t := s.graphCall(w, r, kindPresence, "Presence.Read.All", "Presence.ReadWrite.All")
	if t == nil {
		return
	}
	id := r.PathValue("id")
	t.mu.Lock()
	u := t.byID[strings.ToLower(id)]
	if u == nil || u.deleted {
		t.mu.Unlock()
		writeOData(w, r, http.StatusNotFound, "ResourceNotFound",
			fmt.Sprintf("User '%s' was not found.", id))
		return
	}
	p := toPresenceJSON(u.ID, u.effective(time.Now()))
	t.mu.Unlock()
	writeJSON(w, http.StatusOK, p)
}

// setPresenceCombos are the availability/activity pairs setPresence takes.
var setPresenceCombos = map[[2]string]bool{
	{"Available", "Available"}:       true,
	{"Busy", "InACall"}:              true,
	{"Busy", "InAConferenceCall"}:    true,
	{"Away", "Away"}:                 true,
	{"DoNotDisturb", "Presenting"}:   true,
	{"DoNotDisturb", "DoNotDisturb"}: true,
	{"Busy", "Busy"}:                 true,
}

// setPresence serves POST /v1.0/users/{id}/presence/setPresence.
func (s *Sim) setPresence(w http.ResponseWriter, r *http.Request) {
	t := s.graphCall(w, r, kindSetPresence, "Presence.ReadWrite.All")
	if t == nil {
		return
	}
	var body struct {
		SessionID          string `json:"sessionId"`
		Availability       string `json:"availability"`
		Activity           string `json:"activity"`
		ExpirationDuration string `json:"expirationDuration"`
	}
	if err := readJSON(r, &body); err != nil {
		writeOData(w, r, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	if body.SessionID != s.opts.ClientID {
		writeOData(w, r, http.StatusBadRequest, "BadRequest",
			"The sessionId must be the application id of the caller.")
		return
	}
	if !setPresenceCombos[[2]string{body.Availability, body.Activity}] {
		writeOData(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf(
			"The availability '%s' with activity '%s' is not supported.",
			body.Availability, body.Activity))
		return
	}
	expiry := 5 * time.Minute
	if body.ExpirationDuration != "" {
		d, err := parseISODuration(body.ExpirationDuration)
		if err != nil || d < 5*time.Minute || d > 4*time.Hour {
			writeOData(w, r, http.StatusBadRequest, "BadRequest",
				"The expirationDuration must be between PT5M and PT4H.")
			return
		}
		expiry = d
	}

	s.changeSession(w, r, t, &appSession{
		p:       presence.Presence{Availability: body.Availability, Activity: body.Activity},
		expires: time.Now().Add(expiry),
	})
}

// clearPresence serves POST /v1.0/users/{id}/presence/clearPresence.
func (s *Sim) clearPresence(w http.ResponseWriter, r *http.Request) {
	t := s.graphCall(w, r, kindClearPresence, "Presence.ReadWrite.All")
	if t == nil {
		return
	}
	var body struct {
		SessionID string `json:"sessionId"`
	}
	if err := readJSON(r, &body); err != nil {
		writeOData(w, r, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	if body.SessionID != s.opts.ClientID {
		writeOData(w, r, http.StatusBadRequest, "BadRequest",
			"The sessionId must be the application id of the caller.")
		return
	}
	s.changeSession(w, r, t, nil)
}

// changeSession sets or clears the app's presence session of the user in
// the path and records the time when the effective presence changed.
func (s *Sim) changeSession(w http.ResponseWriter, r *http.Request, t *tenant, sess *appSession) {
	id := r.PathValue("id")
	now := time.Now()
	t.mu.Lock()
	u := t.byID[strings.ToLower(id)]
	if u == nil || u.deleted {
		t.mu.Unlock()
		writeOData(w, r, http.StatusNotFound, "ResourceNotFound",
			fmt.Sprintf("User '%s' was not found.", id))
		return
	}
	before := u.effective(now)
	u.session = sess
	if u.effective(now) != before {
		u.changedAt = now
	}
	t.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

var isoDuration = regexp.MustCompile(`^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$`)

// parseISODuration reads the PTnHnMnS durations that setPresence takes.
func parseISODuration(s string) (time.Duration, error) {
	m := isoDuration.FindStringSubmatch(s)
	if m == nil || s == "PT" {
		return 0, fmt.Errorf("duration %q is not PTnHnMnS", s)
	}
	var d time.Duration
	for i, unit := range []time.Duration{time.Hour, time.Minute, time.Second} {
		if m[i+1] != "" {
			n, err := strconv.Atoi(m[i+1])
			if err != nil {
				return 0, fmt.Errorf("duration %q: %w", s, err)
			}
			d += time.Duration(n) * unit
		}
	}
	return d, nil
}

// readJSON decodes a request body of at most 1 MiB, gzip-compressed or not
// (the Graph SDK compresses request bodies).
func readJSON(r *http.Request, v any) error {
	var body io.Reader = http.MaxBytesReader(nil, r.Body, 1<<20)
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return fmt.Errorf("Invalid gzip request body.")
		}
		defer zr.Close()
		body = io.LimitReader(zr, 4<<20)
	}
	if err := json.NewDecoder(body).Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("The request body is too large.")
		}
		return fmt.Errorf("Invalid JSON request body.")
	}
	return nil
}

// writeOData answers with Graph's error JSON.
func writeOData(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	inner := map[string]string{
		"date":       time.Now().UTC().Format("2006-01-02T15:04:05"),
		"request-id": newGUID(),
	}
	if id := r.Header.Get("client-request-id"); id != "" {
		inner["client-request-id"] = id
	} else {
		inner["client-request-id"] = inner["request-id"]
	}
	writeJSON(w, status, map[string]any{
		"error": map[string]any{"code": code, "message": msg, "innerError": inner},
	})
}

func writeThrottled(w http.ResponseWriter, r *http.Request, after time.Duration) {
	if after > 0 {
		secs := int((after + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	writeOData(w, r, http.StatusTooManyRequests, "TooManyRequests",
		"Too many requests, please retry later.")
}

func writeInjectedError(w http.ResponseWriter, r *http.Request, status int) {
	codes := map[int]string{400: "BadRequest", 401: "InvalidAuthenticationToken",
		403: "Forbidden", 404: "ResourceNotFound", 409: "Conflict", 500: "InternalServerError",
		502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}
	code := codes[status]
	if code == "" {
		code = "UnknownError"
	}
	writeOData(w, r, status, code, http.StatusText(status))
}

func baseURL(r *http.Request) string {
	return "http://" + r.Host
}
