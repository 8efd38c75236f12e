package graphsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/setera/onesync/graph"
)

// tokenClaims are the claims of a simulated Graph access token, named as in
// Entra's v1.0 access tokens for Graph.
type tokenClaims struct {
	Aud   string   `json:"aud"`
	Iss   string   `json:"iss"`
	Iat   int64    `json:"iat"`
	Nbf   int64    `json:"nbf"`
	Exp   int64    `json:"exp"`
	AppID string   `json:"appid"`
	IdTyp string   `json:"idtyp"`
	Oid   string   `json:"oid"`
	Sub   string   `json:"sub"`
	Roles []string `json:"roles"`
	Tid   string   `json:"tid"`
	Ver   string   `json:"ver"`
}

// mintToken makes a JWT-shaped token signed with the simulator's HMAC key
// (HS256): real Graph tokens are RS256, but nothing outside the simulator
// verifies these.
func (s *Sim) mintToken(t *tenant, roles []string, now time.Time) (string, error) {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT","alg":"HS256"}`))
	claims := tokenClaims{
		Aud: "https://graph.microsoft.com", Iss: "https://sts.windows.net/" + t.id + "/",
		Iat: now.Unix(), Nbf: now.Unix(), Exp: now.Add(s.opts.TokenLifetime).Unix(),
		AppID: s.opts.ClientID, IdTyp: "app", Oid: t.spID, Sub: t.spID,
		Roles: roles, Tid: t.id, Ver: "1.0",
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("marshal claims: %w", err)
	}
	body := header + "." + base64.RawURLEncoding.EncodeToString(payload)
	return body + "." + s.sign(body), nil
}

func (s *Sim) sign(body string) string {
	mac := hmac.New(sha256.New, s.hmacKey)
	mac.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// parseToken checks a bearer token's signature and lifetime and returns
// its claims.
func (s *Sim) parseToken(token string, now time.Time) (tokenClaims, string) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return tokenClaims{}, "IDX14100: JWT is not well formed."
	}
	want := s.sign(parts[0] + "." + parts[1])
	if subtle.ConstantTimeCompare([]byte(want), []byte(parts[2])) != 1 {
		return tokenClaims{}, "Access token validation failure. Invalid signature."
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return tokenClaims{}, "IDX14100: JWT is not well formed."
	}
	var c tokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return tokenClaims{}, "IDX14100: JWT is not well formed."
	}
	if now.Unix() >= c.Exp {
		return tokenClaims{}, "Lifetime validation failed, the token is expired."
	}
	if c.Aud != "https://graph.microsoft.com" {
		return tokenClaims{}, "Access token validation failure. Invalid audience."
	}
	return c, ""
}

// tokenEndpoint serves POST /{tenant}/oauth2/v2.0/token with the client
// credentials grant, answering as Entra does.
func (s *Sim) tokenEndpoint(w http.ResponseWriter, r *http.Request) {
	tenantName := r.PathValue("tenant")
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'grant_type'.")
		return
	}

	t := s.tenantByName(tenantName)
	if t == nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 90002, fmt.Sprintf(
			"Tenant '%s' not found. Check to make sure you have the correct tenant ID and "+
				"are signing into the correct cloud.", tenantName))
		return
	}
	t.mu.Lock()
	t.counts.Token++
	t.mu.Unlock()

	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", 70003,
			fmt.Sprintf("The app requested an unsupported grant type '%s'.", gt))
		return
	}
	if scope := r.PostForm.Get("scope"); scope != graph.GraphScope {
		writeOAuthError(w, http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf(
			"The provided value for scope %s is not valid. Client credential flows must "+
				"have a scope value with /.default suffixed to the resource identifier.", scope))
		return
	}

	clientID, secret, ok := r.BasicAuth()
	if ok {
		clientID, _ = url.QueryUnescape(clientID)
		secret, _ = url.QueryUnescape(secret)
	} else {
		clientID, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if clientID != s.opts.ClientID {
		writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf(
			"Application with identifier '%s' was not found in the directory '%s'.",
			clientID, t.name))
		return
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) != 1 {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", 7000215,
			"Invalid client secret provided. Ensure the secret being sent in the request "+
				"is the client secret value, not the client secret ID, for a secret added "+
				"to app '"+s.opts.ClientID+"'.")
		return
	}
	s.mu.RLock()
	expired := s.secretExpired
	s.mu.RUnlock()
	if expired {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", 7000222,
			"The provided client secret keys for app '"+s.opts.ClientID+"' are expired.")
		return
	}

	t.mu.Lock()
	consented, app, roles := t.consented, t.app, slices.Clone(t.roles)
	t.mu.Unlock()
	switch {
	case app == AppDeleted:
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", 7000229, fmt.Sprintf(
			"The client application %s is missing service principal in the tenant %s.",
			s.opts.ClientID, t.id))
		return
	case app == AppMissing:
		writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf(
			"Application with identifier '%s' was not found in the directory '%s'.",
			s.opts.ClientID, t.name))
		return
	case app == AppDisabled:
		writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", 7000112, fmt.Sprintf(
			"Application '%s' is disabled.", s.opts.ClientID))
		return
	case !consented:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", 65001, fmt.Sprintf(
			"The user or administrator has not consented to use the application with ID "+
				"'%s'. Send an interactive authorization request for this user and resource.",
			s.opts.ClientID))
		return
	}

	now := time.Now()
	token, err := s.mintToken(t, roles, now)
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", 50000,
			"There was an error issuing a token.")
		return
	}
	secs := int(s.opts.TokenLifetime / time.Second)
	w.Header().Set("Cache-Control", "no-store, no-cache")
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs,
		"access_token": token,
	})
}

// writeOAuthError answers with Entra's error JSON.
func writeOAuthError(w http.ResponseWriter, status int, code string, aadsts int, msg string) {
	trace, corr := newGUID(), newGUID()
	now := time.Now().UTC()
	desc := fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s",
		aadsts, msg, trace, corr, now.Format("2006-01-02 15:04:05Z"))
	w.Header().Set("Cache-Control", "no-store, no-cache")
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": desc,
		"error_codes":       []int{aadsts},
		"timestamp":         now.Format("2006-01-02 15:04:05Z"),
		"trace_id":          trace,
		"correlation_id":    corr,
		"error_uri":         "https://login.microsoftonline.com/error?code=" + fmt.Sprint(aadsts),
	})
}

// consentFlow is a signed-in admin between the sign-in and the
// permissions page.
type consentFlow struct {
	tenant      *tenant
	redirectURI string
	state       string
	expires     time.Time
}

type consentPage struct {
	Step        string // "signin", "permissions" or "error"
	ClientID    string
	RedirectURI string
	State       string
	Scope       string
	Email       string
	Error       string
	Flow        string
	TenantName  string
	Permissions []string
}

var consentTmpl = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{if eq .Step "permissions"}}Permissions requested{{else}}Sign in{{end}}</title>
<style>
body{font-family:system-ui,sans-serif;background:#f2f2f2;margin:0}
main{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;box-shadow:0 2px 6px #0003}
label{display:block;margin-top:1rem}input{width:100%;padding:.4rem;box-sizing:border-box}
.error{color:#a4262c}button{margin-top:1.2rem;padding:.5rem 1.2rem}
</style></head><body><main>
{{if eq .Step "error"}}
<h1>Sorry, but we're having trouble signing you in.</h1>
<p class="error" role="alert">{{.Error}}</p>
{{else if eq .Step "signin"}}
<h1>Sign in</h1>
<form method="post" action="/organizations/v2.0/adminconsent">
<input type="hidden" name="step" value="signin">
<input type="hidden" name="client_id" value="{{.ClientID}}">
<input type="hidden" name="redirect_uri" value="{{.RedirectURI}}">
<input type="hidden" name="state" value="{{.State}}">
<input type="hidden" name="scope" value="{{.Scope}}">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" value="{{.Email}}" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
{{if .Error}}<p class="error" id="signin-error" role="alert">{{.Error}}</p>{{end}}
<button type="submit">Sign in</button>
</form>
{{else}}
<h1>Permissions requested</h1>
<p>OneSync (application {{.ClientID}}) asks for these permissions in
<strong>{{.TenantName}}</strong>, for your whole organisation:</p>
<ul>{{range .Permissions}}<li>{{.}}</li>{{end}}</ul>
<form method="post" action="/organizations/v2.0/adminconsent">
<input type="hidden" name="step" value="decide">
<input type="hidden" name="flow" value="{{.Flow}}">
<button type="submit" name="decision" value="accept">Accept</button>
<button type="submit" name="decision" value="cancel">Cancel</button>
</form>
{{end}}
</main></body></html>`))

// adminConsentGet shows the sign-in page for
// GET /organizations/v2.0/adminconsent.
func (s *Sim) adminConsentGet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page := consentPage{Step: "signin", ClientID: q.Get("client_id"),
		RedirectURI: q.Get("redirect_uri"), State: q.Get("state"), Scope: q.Get("scope")}
	if msg := s.checkConsentRequest(page.ClientID, page.RedirectURI, page.Scope); msg != "" {
		renderConsent(w, http.StatusBadRequest, consentPage{Step: "error", Error: msg})
		return
	}
	renderConsent(w, http.StatusOK, page)
}

// adminConsentPost handles the sign-in form and the Accept or Cancel
// decision.
func (s *Sim) adminConsentPost(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		renderConsent(w, http.StatusBadRequest, consentPage{Step: "error",
			Error: "The request could not be read."})
		return
	}
	switch r.PostForm.Get("step") {
	case "signin":
		s.consentSignIn(w, r)
	case "decide":
		s.consentDecide(w, r)
	default:
		renderConsent(w, http.StatusBadRequest, consentPage{Step: "error",
			Error: "Unknown step."})
	}
}

func (s *Sim) consentSignIn(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	page := consentPage{Step: "signin", ClientID: f.Get("client_id"),
		RedirectURI: f.Get("redirect_uri"), State: f.Get("state"), Scope: f.Get("scope"),
		Email: f.Get("email")}
	if msg := s.checkConsentRequest(page.ClientID, page.RedirectURI, page.Scope); msg != "" {
		renderConsent(w, http.StatusBadRequest, consentPage{Step: "error", Error: msg})
		return
	}

	t := s.tenantByAdmin(page.Email)
	if t == nil || subtle.ConstantTimeCompare([]byte(f.Get("password")),
		[]byte(t.adminPassword)) != 1 {
		page.Error = "Your account or password is incorrect."
		renderConsent(w, http.StatusUnauthorized, page)
		return
	}

	flowID := randomHex(16)
	s.mu.Lock()
	now := time.Now()
	for id, fl := range s.flows {
		if now.After(fl.expires) {
			delete(s.flows, id)
		}
	}
	s.flows[flowID] = &consentFlow{tenant: t, redirectURI: page.RedirectURI,
		state: page.State, expires: now.Add(10 * time.Minute)}
	s.mu.Unlock()

	roles := slices.Clone(s.opts.Roles)
	renderConsent(w, http.StatusOK, consentPage{Step: "permissions", ClientID: s.opts.ClientID,
		Flow: flowID, TenantName: t.name, Permissions: roles})
}

func (s *Sim) consentDecide(w http.ResponseWriter, r *http.Request) {
	flowID := r.PostForm.Get("flow")
	s.mu.Lock()
	fl := s.flows[flowID]
	delete(s.flows, flowID)
	s.mu.Unlock()
	if fl == nil || time.Now().After(fl.expires) {
		renderConsent(w, http.StatusBadRequest, consentPage{Step: "error",
			Error: "Your sign-in session expired. Start again."})
		return
	}

	q := url.Values{}
	switch r.PostForm.Get("decision") {
	case "accept":
		t := fl.tenant
		t.mu.Lock()
		t.consented, t.app = true, AppPresent
		t.roles = slices.Clone(s.opts.Roles)
		t.mu.Unlock()
		scopes := make([]string, len(s.opts.Roles))
		for i, role := range s.opts.Roles {
			scopes[i] = "https://graph.microsoft.com/" + role
		}
		q.Set("admin_consent", "True")
		q.Set("tenant", t.id)
		q.Set("scope", strings.Join(scopes, " "))
	case "cancel":
		q.Set("error", "access_denied")
		q.Set("error_description", fmt.Sprintf("AADSTS65004: User declined to consent to "+
			"access the app. Trace ID: %s Correlation ID: %s Timestamp: %s", newGUID(),
			newGUID(), time.Now().UTC().Format("2006-01-02 15:04:05Z")))
	default:
		renderConsent(w, http.StatusBadRequest, consentPage{Step: "error",
			Error: "Choose Accept or Cancel."})
		return
	}
	if fl.state != "" {
		q.Set("state", fl.state)
	}

	target, _ := url.Parse(fl.redirectURI) // checked at sign-in
	target.RawQuery = q.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}

// checkConsentRequest returns what Entra would show for a bad consent
// request, or "".
func (s *Sim) checkConsentRequest(clientID, redirectURI, scope string) string {
	if clientID != s.opts.ClientID {
		return fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found "+
			"in the directory.", clientID)
	}
	if scope != graph.GraphScope {
		return fmt.Sprintf("AADSTS70011: The provided value for the input parameter 'scope' "+
			"is not valid. The scope %s is not valid.", scope)
	}
	u, err := url.Parse(redirectURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "AADSTS50011: The redirect URI specified in the request is not valid."
	}
	if len(s.opts.RedirectURIs) > 0 && !slices.Contains(s.opts.RedirectURIs, redirectURI) {
		return fmt.Sprintf("AADSTS50011: The redirect URI '%s' specified in the request "+
			"does not match the redirect URIs configured for the application '%s'.",
			redirectURI, s.opts.ClientID)
	}
	return ""
}

func renderConsent(w http.ResponseWriter, status int, page consentPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = consentTmpl.Execute(w, page)
}

func newGUID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
