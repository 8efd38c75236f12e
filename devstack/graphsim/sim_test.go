package graphsim_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/setera/onesync/devstack/graphsim"
	"github.com/setera/onesync/graph"
)

const (
	clientID = "3f2a9c1e-7b4d-4f6a-9e2b-8c1d0a5b6e7f"
	secret   = "sim-test-secret"
)

func start(t *testing.T, opts graphsim.Options) *graphsim.Sim {
	t.Helper()
	opts.ClientID, opts.ClientSecret = clientID, secret
	sim := graphsim.New(opts)
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

// noRedirect is an HTTP client that shows redirects instead of following.
var noRedirect = &http.Client{Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func token(t *testing.T, sim *graphsim.Sim, tenant string) string {
	t.Helper()
	resp, err := http.PostForm(sim.URL()+"/"+tenant+"/oauth2/v2.0/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {clientID},
		"client_secret": {secret}, "scope": {graph.GraphScope}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 200 {
		t.Fatalf("token status %d: %v", resp.StatusCode, body)
	}
	if body["token_type"] != "Bearer" || body["expires_in"] == nil {
		t.Fatalf("token body %v", body)
	}
	return body["access_token"].(string)
}

func call(t *testing.T, method, u, tok, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, resp.Header, m
}

func TestTokenErrorBodiesAreEntraShaped(t *testing.T) {
	sim := start(t, graphsim.Options{Seed: 1})
	info, _ := sim.AddTenant(1, 3)

	resp, err := http.PostForm(sim.URL()+"/"+info.ID+"/oauth2/v2.0/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {clientID},
		"client_secret": {secret}, "scope": {graph.GraphScope}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("unconsented tenant: %d %v", resp.StatusCode, body)
	}
	for _, k := range []string{"error_description", "error_codes", "timestamp", "trace_id",
		"correlation_id", "error_uri"} {
		if body[k] == nil {
			t.Errorf("error body lacks %s", k)
		}
	}
	if !strings.HasPrefix(body["error_description"].(string), "AADSTS65001:") {
		t.Errorf("description %q", body["error_description"])
	}
}

func TestUsersPagingSelectFilterAndTop(t *testing.T) {
	sim := start(t, graphsim.Options{Seed: 2})
	info, _ := sim.AddTenant(2, 250)
	_ = sim.Consent(info.ID)
	tok := token(t, sim, info.ID)

	status, _, body := call(t, "GET", sim.URL()+"/v1.0/users?$top=1000", tok, "")
	if status != 400 || body["error"] == nil {
		t.Fatalf("$top=1000: %d %v", status, body)
	}

	all, _ := sim.Users(info.ID)
	wantMembers := 0
	for _, u := range all {
		if u.Member() {
			wantMembers++
		}
	}
	next := sim.URL() + "/v1.0/users?$select=id,accountEnabled,userType&$top=100&" +
		"$filter=" + url.QueryEscape("accountEnabled eq true and userType eq 'Member'")
	got, pages := 0, 0
	for next != "" {
		status, _, body := call(t, "GET", next, tok, "")
		if status != 200 {
			t.Fatalf("page %d: %d %v", pages, status, body)
		}
		for _, v := range body["value"].([]any) {
			u := v.(map[string]any)
			if u["accountEnabled"] != true || u["userType"] != "Member" || len(u) != 3 {
				t.Fatalf("filtered or selected wrongly: %v", u)
			}
			got++
		}
		next, _ = body["@odata.nextLink"].(string)
		pages++
	}
	if got != wantMembers || pages != (wantMembers+99)/100 {
		t.Errorf("read %d members in %d pages, want %d", got, pages, wantMembers)
	}
	if wantMembers == len(all) {
		t.Error("a generated tenant of 250 has no guest or disabled user")
	}

	status, _, _ = call(t, "GET", sim.URL()+"/v1.0/users?$select=password", tok, "")
	if status != 400 {
		t.Errorf("unknown $select property: %d", status)
	}
	status, _, body = call(t, "GET", sim.URL()+"/v1.0/users", "", "")
	if status != 401 || body["error"].(map[string]any)["code"] != "InvalidAuthenticationToken" {
		t.Errorf("no token: %d %v", status, body)
	}
}

func TestPresenceLimitsAndThrottle(t *testing.T) {
	sim := start(t, graphsim.Options{Seed: 3, PresenceLimit: 3, PresenceWindow: 2 * time.Second})
	info, _ := sim.AddTenant(3, 10)
	other, _ := sim.AddTenant(4, 10)
	_ = sim.Consent(info.ID)
	_ = sim.Consent(other.ID)
	tok, otherTok := token(t, sim, info.ID), token(t, sim, other.ID)
	users, _ := sim.Users(info.ID)
	u := sim.URL() + "/v1.0/communications/getPresencesByUserId"

	ids := make([]string, 651)
	for i := range ids {
		ids[i] = users[i%len(users)].ID
	}
	big, _ := json.Marshal(map[string]any{"ids": ids})
	if status, _, _ := call(t, "POST", u, tok, string(big)); status != 400 {
		t.Errorf("651 ids: status %d, want 400", status)
	}

	one := fmt.Sprintf(`{"ids":[%q]}`, users[0].ID)
	for i := 0; i < 3; i++ {
		status, _, body := call(t, "POST", u, tok, one)
		if status != 200 || len(body["value"].([]any)) != 1 {
			t.Fatalf("request %d: %d %v", i, status, body)
		}
	}
	status, hdr, _ := call(t, "POST", u, tok, one)
	if status != 429 || hdr.Get("Retry-After") == "" {
		t.Fatalf("fourth request in the window: %d Retry-After %q", status, hdr.Get("Retry-After"))
	}
	otherOne := fmt.Sprintf(`{"ids":[%q]}`, mustUsers(t, sim, other.ID)[0].ID)
	if status, _, _ := call(t, "POST", u, otherTok, otherOne); status != 200 {
		t.Errorf("other tenant throttled by this one's window: %d", status)
	}

	_ = sim.InjectThrottle(other.ID, 1, 2*time.Second)
	status, hdr, _ = call(t, "POST", u, otherTok, otherOne)
	if status != 429 || hdr.Get("Retry-After") != "2" {
		t.Errorf("injected throttle: %d Retry-After %q", status, hdr.Get("Retry-After"))
	}
	_ = sim.FailID(other.ID, mustUsers(t, sim, other.ID)[0].ID)
	if status, _, _ := call(t, "POST", u, otherTok, otherOne); status != 400 {
		t.Errorf("failing id: %d, want 400", status)
	}
	c, _ := sim.RequestCounts(other.ID)
	if c.Presences != 3 || c.Throttled != 1 || c.Failed != 1 {
		t.Errorf("counts %+v", c)
	}
}

func TestSetPresenceRecordsTheChangeTime(t *testing.T) {
	sim := start(t, graphsim.Options{Seed: 4})
	demo := sim.DemoTenant()
	_ = sim.Consent(demo.ID)
	tok := token(t, sim, demo.ID)
	user := graphsim.DemoUsers()[0].ID

	before := time.Now()
	at, err := sim.SetPresence(demo.ID, user, "Busy", "InACall")
	if err != nil || at.Before(before) {
		t.Fatalf("SetPresence = %s, %v", at, err)
	}
	status, _, body := call(t, "GET", sim.URL()+"/v1.0/users/"+user+"/presence", tok, "")
	if status != 200 || body["availability"] != "Busy" || body["activity"] != "InACall" {
		t.Fatalf("presence %d %v", status, body)
	}
	if _, err := sim.SetPresence(demo.ID, user, "Sleeping", "InACall"); err == nil {
		t.Error("an availability Graph does not have was accepted")
	}

	guest := demoGuest(t)
	status, _, body = call(t, "POST", sim.URL()+"/v1.0/communications/getPresencesByUserId",
		tok, fmt.Sprintf(`{"ids":[%q]}`, guest.ID))
	p := body["value"].([]any)[0].(map[string]any)
	if status != 200 || p["availability"] != "PresenceUnknown" {
		t.Errorf("guest presence %d %v", status, body)
	}
}

func TestControlAPIRefusesBadInputWith4xxJSON(t *testing.T) {
	sim := start(t, graphsim.Options{Seed: 5})
	demo := sim.DemoTenant()
	user := graphsim.DemoUsers()[0].ID
	base := sim.URL() + "/control/api/tenants/"

	cases := []struct {
		name, path, body string
		status           int
	}{
		{"unknown tenant", "nope/users/" + user + "/presence", `{"action":"call-start"}`, 404},
		{"unknown user", demo.ID + "/users/nope/presence", `{"action":"call-start"}`, 404},
		{"bad availability", demo.ID + "/users/" + user + "/presence",
			`{"availability":"Sleeping","activity":"Away"}`, 400},
		{"bad activity", demo.ID + "/users/" + user + "/presence",
			`{"availability":"Away","activity":"Napping"}`, 400},
		{"bad action", demo.ID + "/users/" + user + "/presence", `{"action":"dance"}`, 400},
		{"not json", demo.ID + "/users/" + user + "/presence", `{`, 400},
		{"unknown field", demo.ID + "/app", `{"state":"deleted","x":1}`, 400},
		{"bad app state", demo.ID + "/app", `{"state":"gone"}`, 400},
		{"bad fault", demo.ID + "/faults", `{"kind":"error","status":200,"count":1}`, 400},
		{"unknown fault", demo.ID + "/faults", `{"kind":"meteor"}`, 400},
		{"unlicensed user", demo.ID + "/users/" + demoGuest(t).ID + "/presence",
			`{"action":"call-start"}`, 409},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := call(t, "POST", base+tc.path, "", tc.body)
			if status != tc.status || body["error"] == nil {
				t.Fatalf("%d %v, want %d with a JSON error", status, body, tc.status)
			}
		})
	}

	status, _, body := call(t, "POST", base+demo.ID+"/users/"+user+"/presence", "",
		`{"action":"presenting-start"}`)
	if status != 200 || body["availability"] != "DoNotDisturb" || body["changedAt"] == nil {
		t.Fatalf("action: %d %v", status, body)
	}
	status, _, _ = call(t, "POST", base+demo.ID+"/app", "", `{"state":"deleted"}`)
	if info, _ := sim.Tenant(demo.ID); status != 200 || info.App != graphsim.AppDeleted {
		t.Errorf("delete app: %d %v", status, info.App)
	}
	for _, page := range []string{"/control", "/control/tenants/" + demo.ID} {
		resp, err := http.Get(sim.URL() + page)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", page, err, resp)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(raw), "Demo Oy") {
			t.Errorf("%s does not show the demo tenant", page)
		}
		if page != "/control" && !strings.Contains(string(raw), "presence reads") {
			t.Errorf("%s does not show the request counts:\n%s", page, raw)
		}
		if !strings.HasSuffix(strings.TrimSpace(string(raw)), "</html>") {
			t.Errorf("%s stops before its end: a template error?", page)
		}
	}
}

func TestAdminConsentPageAcceptAndCancel(t *testing.T) {
	redirect := "http://127.0.0.1:9/consent/callback"
	sim := start(t, graphsim.Options{Seed: 6, RedirectURIs: []string{redirect}})
	demo := sim.DemoTenant()
	password, _ := sim.AdminPassword(demo.ID)
	consentURL := sim.URL() + "/organizations/v2.0/adminconsent"

	q := url.Values{"client_id": {clientID}, "scope": {graph.GraphScope},
		"redirect_uri": {redirect}, "state": {"st-1"}}
	resp, err := http.Get(consentURL + "?" + q.Encode())
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("consent page: %v %v", err, resp)
	}
	resp.Body.Close()

	bad := url.Values{"client_id": {clientID}, "scope": {graph.GraphScope},
		"redirect_uri": {"http://127.0.0.1:9/elsewhere"}, "state": {"st-1"}}
	if resp, _ := http.Get(consentURL + "?" + bad.Encode()); resp.StatusCode != 400 {
		t.Errorf("unregistered redirect uri: %d", resp.StatusCode)
	}

	signIn := func(pw string) (int, string) {
		form := url.Values{"step": {"signin"}, "email": {demo.AdminEmail}, "password": {pw}}
		for k, v := range q {
			form[k] = v
		}
		resp, err := http.PostForm(consentURL, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	if status, page := signIn("wrong"); status != 401 || !strings.Contains(page, "incorrect") {
		t.Fatalf("wrong password: %d", status)
	}

	decide := func(decision string) url.Values {
		status, page := signIn(password)
		if status != 200 || !strings.Contains(page, "Permissions requested") ||
			!strings.Contains(page, "Presence.Read.All") {
			t.Fatalf("permissions page: %d", status)
		}
		flow := between(page, `name="flow" value="`, `"`)
		resp, err := noRedirect.PostForm(consentURL, url.Values{"step": {"decide"},
			"flow": {flow}, "decision": {decision}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != 302 || err != nil || !strings.HasPrefix(loc.String(), redirect) {
			t.Fatalf("decision %s: %d %s", decision, resp.StatusCode, loc)
		}
		return loc.Query()
	}

	got := decide("cancel")
	if got.Get("error") != "access_denied" || !strings.HasPrefix(got.Get("error_description"),
		"AADSTS65004") || got.Get("state") != "st-1" || got.Has("tenant") {
		t.Errorf("cancel redirect %v", got)
	}
	if info, _ := sim.Tenant(demo.ID); info.Consented {
		t.Error("cancel consented")
	}

	got = decide("accept")
	if got.Get("admin_consent") != "True" || got.Get("tenant") != demo.ID ||
		got.Get("state") != "st-1" || got.Get("scope") == "" {
		t.Errorf("accept redirect %v", got)
	}
	if info, _ := sim.Tenant(demo.ID); !info.Consented {
		t.Error("accept did not consent")
	}
	token(t, sim, demo.ID) // tokens are issued now
}

func TestDemoUsersAndGeneratedTenantsAreDeterministic(t *testing.T) {
	if !reflect.DeepEqual(graphsim.DemoUsers(), graphsim.DemoUsers()) {
		t.Fatal("DemoUsers differs between calls")
	}
	members := 0
	for _, u := range graphsim.DemoUsers() {
		if !strings.HasSuffix(u.UPN, "@"+graphsim.DemoDomain) {
			t.Errorf("demo user %s is not on %s", u.UPN, graphsim.DemoDomain)
		}
		if u.Member() && u.UPN != graphsim.DemoAdminEmail {
			members++
		}
	}
	if members != 12 {
		t.Errorf("%d demo members besides the admin, want 12", members)
	}

	a := graphsim.New(graphsim.Options{Seed: 9, ClientID: clientID, ClientSecret: secret})
	b := graphsim.New(graphsim.Options{Seed: 9, ClientID: clientID, ClientSecret: secret})
	ta, _ := a.AddTenant(5, 40)
	tb, _ := b.AddTenant(5, 40)
	ua, _ := a.Users(ta.ID)
	ub, _ := b.Users(tb.ID)
	if ta.ID != tb.ID || !reflect.DeepEqual(ua, ub) {
		t.Fatal("the same seeds made different tenants")
	}
	national := false
	for _, u := range ua {
		if !strings.HasSuffix(u.UPN, "@"+ta.Domain) {
			t.Errorf("UPN %s not on %s", u.UPN, ta.Domain)
		}
		if strings.HasPrefix(u.MobilePhone, "0") {
			national = true
		}
	}
	if !national {
		t.Error("no mobile phone in the national format among 40 users")
	}
	if pw1, _ := a.AdminPassword(ta.ID); pw1 == "" {
		t.Error("no admin password")
	}
}

func TestUsersDeltaReportsChangesAndRemovals(t *testing.T) {
	sim := start(t, graphsim.Options{Seed: 7})
	info, _ := sim.AddTenant(7, 30)
	_ = sim.Consent(info.ID)
	tok := token(t, sim, info.ID)
	users, _ := sim.Users(info.ID)

	status, _, body := call(t, "GET", sim.URL()+"/v1.0/users/delta", tok, "")
	if status != 200 || len(body["value"].([]any)) != 30 {
		t.Fatalf("initial delta %d %d", status, len(body["value"].([]any)))
	}
	link := body["@odata.deltaLink"].(string)

	_ = sim.RemoveUser(info.ID, users[0].ID)
	_ = sim.SetAccountEnabled(info.ID, users[1].ID, !users[1].AccountEnabled)
	_, _, body = call(t, "GET", link, tok, "")
	vals := body["value"].([]any)
	if len(vals) != 2 {
		t.Fatalf("delta after two changes has %d entries: %v", len(vals), vals)
	}
	first := vals[0].(map[string]any)
	if first["id"] != users[0].ID || first["@removed"] == nil {
		t.Errorf("removal not reported: %v", first)
	}
}

func between(s, from, to string) string {
	_, rest, _ := strings.Cut(s, from)
	v, _, _ := strings.Cut(rest, to)
	return v
}

func mustUsers(t *testing.T, sim *graphsim.Sim, tenant string) []graph.User {
	t.Helper()
	u, err := sim.Users(tenant)
	if err != nil || len(u) == 0 {
		t.Fatalf("users of %s: %v", tenant, err)
	}
	return u
}

// demoGuest returns the demo tenant's guest user, who has no Teams licence.
func demoGuest(t *testing.T) graph.User {
	t.Helper()
	for _, u := range graphsim.DemoUsers() {
		if u.UserType == "Guest" {
			return u
		}
	}
	t.Fatal("the demo tenant has no guest")
	return graph.User{}
}
