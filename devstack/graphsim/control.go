package graphsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/setera/onesync/presence"
)

// Actions are the named presence changes of the control page and API, each
// a typical Teams pair from Graph's documentation. Every "-end" action and
// "available" return the user to Available/Available.
var Actions = map[string]presence.Presence{
	"available":        {Availability: "Available", Activity: "Available"},
	"call-start":       {Availability: "Busy", Activity: "InACall"},
	"call-end":         {Availability: "Available", Activity: "Available"},
	"conference-start": {Availability: "Busy", Activity: "InAConferenceCall"},
	"conference-end":   {Availability: "Available", Activity: "Available"},
	"meeting-start":    {Availability: "Busy", Activity: "InAMeeting"},
	"meeting-end":      {Availability: "Available", Activity: "Available"},
	"presenting-start": {Availability: "DoNotDisturb", Activity: "Presenting"},
	"presenting-end":   {Availability: "Available", Activity: "Available"},
	"dnd-start":        {Availability: "DoNotDisturb", Activity: "DoNotDisturb"},
	"dnd-end":          {Availability: "Available", Activity: "Available"},
	"ooo-start":        {Availability: "Available", Activity: "OutOfOffice", OutOfOffice: true},
	"ooo-end":          {Availability: "Available", Activity: "Available"},
	"away":             {Availability: "Away", Activity: "Away"},
	"offline":          {Availability: "Offline", Activity: "OffWork"},
}

// actionOrder is how the control page lists the actions.
var actionOrder = []string{"available", "call-start", "conference-start", "meeting-start",
	"presenting-start", "dnd-start", "ooo-start", "away", "offline"}

// ApplyAction sets a user's presence by a named action (see Actions) and
// returns when it changed.
func (s *Sim) ApplyAction(tenantID, userID, action string) (time.Time, error) {
	p, ok := Actions[action]
	if !ok {
		return time.Time{}, fmt.Errorf("%w: unknown action %q", ErrBadPresence, action)
	}
	return s.setBase(tenantID, userID, p)
}

// controlUser is a user as the control API shows it.
type controlUser struct {
	ID                string    `json:"id"`
	DisplayName       string    `json:"displayName"`
	Mail              string    `json:"mail,omitempty"`
	UPN               string    `json:"userPrincipalName"`
	BusinessPhones    []string  `json:"businessPhones"`
	MobilePhone       string    `json:"mobilePhone,omitempty"`
	AccountEnabled    bool      `json:"accountEnabled"`
	UserType          string    `json:"userType"`
	Licensed          bool      `json:"teamsLicensed"`
	Availability      string    `json:"availability"`
	Activity          string    `json:"activity"`
	OutOfOffice       bool      `json:"outOfOffice"`
	PresenceChangedAt time.Time `json:"presenceChangedAt"`
}

func (s *Sim) controlUsers(tenantID string) ([]controlUser, error) {
	t := s.tenant(tenantID)
	if t == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownTenant, tenantID)
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	live := t.liveUsers()
	out := make([]controlUser, 0, len(live))
	for _, u := range live {
		p := u.effective(now)
		out = append(out, controlUser{ID: u.ID, DisplayName: u.DisplayName, Mail: u.Mail,
			UPN: u.UPN, BusinessPhones: append([]string{}, u.BusinessPhones...),
			MobilePhone: u.MobilePhone, AccountEnabled: u.AccountEnabled,
			UserType: u.UserType, Licensed: u.licensed, Availability: p.Availability,
			Activity: p.Activity, OutOfOffice: p.OutOfOffice, PresenceChangedAt: u.changedAt})
	}
	return out, nil
}

// presenceRequest is the body of a control presence change: an action, or
// a raw availability and activity.
type presenceRequest struct {
	Action       string `json:"action"`
	Availability string `json:"availability"`
	Activity     string `json:"activity"`
}

func (s *Sim) applyPresence(tenantID, userID string, req presenceRequest) (time.Time, error) {
	if req.Action != "" {
		if req.Availability != "" || req.Activity != "" {
			return time.Time{}, fmt.Errorf("%w: give an action or availability and activity, "+
				"not both", ErrBadPresence)
		}
		return s.ApplyAction(tenantID, userID, req.Action)
	}
	return s.SetPresence(tenantID, userID, req.Availability, req.Activity)
}

// faultRequest is the body of a control fault injection.
type faultRequest struct {
	// Kind is throttle, error, empty-error, latency, fail-id or clear.
	Kind              string `json:"kind"`
	Count             int    `json:"count"`
	RetryAfterSeconds int    `json:"retryAfterSeconds"`
	Status            int    `json:"status"`
	LatencyMS         int    `json:"latencyMs"`
	ID                string `json:"id"`
}

func (s *Sim) applyFault(tenantID string, f faultRequest) error {
	switch f.Kind {
	case "throttle":
		return s.InjectThrottle(tenantID, f.Count, time.Duration(f.RetryAfterSeconds)*time.Second)
	case "error":
		return s.InjectError(tenantID, f.Status, f.Count)
	case "empty-error":
		return s.InjectEmptyError(tenantID, f.Status, f.Count)
	case "latency":
		return s.SetLatency(tenantID, time.Duration(f.LatencyMS)*time.Millisecond)
	case "fail-id":
		return s.FailID(tenantID, f.ID)
	case "clear":
		return s.ClearFaults(tenantID)
	}
	return fmt.Errorf("fault kind %q is not throttle, error, empty-error, latency, fail-id "+
		"or clear", f.Kind)
}

func (s *Sim) controlRoutes() http.Handler {
	mux := http.NewServeMux()

	mux.HandleFunc("GET /control/api/tenants", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"tenants": s.Tenants()})
	})
	mux.HandleFunc("GET /control/api/tenants/{tenant}", func(w http.ResponseWriter, r *http.Request) {
		info, err := s.Tenant(r.PathValue("tenant"))
		if err != nil {
			controlError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, info)
	})
	mux.HandleFunc("GET /control/api/tenants/{tenant}/users",
		func(w http.ResponseWriter, r *http.Request) {
			users, err := s.controlUsers(r.PathValue("tenant"))
			if err != nil {
				controlError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"users": users})
		})
	mux.HandleFunc("GET /control/api/tenants/{tenant}/requests",
		func(w http.ResponseWriter, r *http.Request) {
			c, err := s.RequestCounts(r.PathValue("tenant"))
			if err != nil {
				controlError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, c)
		})
	mux.HandleFunc("POST /control/api/tenants/{tenant}/users/{user}/presence",
		func(w http.ResponseWriter, r *http.Request) {
			var req presenceRequest
			if err := decodeControl(r, &req); err != nil {
				controlError(w, err)
				return
			}
			at, err := s.applyPresence(r.PathValue("tenant"), r.PathValue("user"), req)
			if err != nil {
				controlError(w, err)
				return
			}
			p, _, _ := s.Presence(r.PathValue("tenant"), r.PathValue("user"))
			writeJSON(w, http.StatusOK, map[string]any{"availability": p.Availability,
				"activity": p.Activity, "changedAt": at})
		})
	mux.HandleFunc("POST /control/api/tenants/{tenant}/app",
		func(w http.ResponseWriter, r *http.Request) {
			var req struct {
				State AppState `json:"state"`
			}
			if err := decodeControl(r, &req); err != nil {
				controlError(w, err)
				return
			}
			if err := s.SetApp(r.PathValue("tenant"), req.State); err != nil {
				controlError(w, err)
				return
			}
			info, _ := s.Tenant(r.PathValue("tenant"))
			writeJSON(w, http.StatusOK, info)
		})
	mux.HandleFunc("POST /control/api/tenants/{tenant}/faults",
		func(w http.ResponseWriter, r *http.Request) {
			var req faultRequest
			if err := decodeControl(r, &req); err != nil {
				controlError(w, err)
				return
			}
			if err := s.applyFault(r.PathValue("tenant"), req); err != nil {
				controlError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})
	mux.HandleFunc("/control/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such control endpoint"})
	})

	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/control", http.StatusFound)
	})
	mux.HandleFunc("GET /control", s.controlIndex)
	mux.HandleFunc("GET /control/tenants/{tenant}", s.controlTenant)
	mux.HandleFunc("POST /control/tenants/{tenant}/users/{user}/presence",
		func(w http.ResponseWriter, r *http.Request) {
			req := presenceRequest{Action: r.PostFormValue("action"),
				Availability: r.PostFormValue("availability"),
				Activity:     r.PostFormValue("activity")}
			_, err := s.applyPresence(r.PathValue("tenant"), r.PathValue("user"), req)
			s.controlDone(w, r, err)
		})
	mux.HandleFunc("POST /control/tenants/{tenant}/app",
		func(w http.ResponseWriter, r *http.Request) {
			s.controlDone(w, r, s.SetApp(r.PathValue("tenant"), AppState(r.PostFormValue("state"))))
		})
	mux.HandleFunc("POST /control/tenants/{tenant}/faults",
		func(w http.ResponseWriter, r *http.Request) {
			num := func(k string) int { n, _ := strconv.Atoi(r.PostFormValue(k)); return n }
			req := faultRequest{Kind: r.PostFormValue("kind"), Count: num("count"),
				RetryAfterSeconds: num("retryAfterSeconds"), Status: num("status"),
				LatencyMS: num("latencyMs"), ID: strings.TrimSpace(r.PostFormValue("id"))}
			s.controlDone(w, r, s.applyFault(r.PathValue("tenant"), req))
		})
	return mux
}

// controlDone redirects a control form back to its tenant page, carrying
// an error message when the change was refused.
func (s *Sim) controlDone(w http.ResponseWriter, r *http.Request, err error) {
	target := "/control/tenants/" + url.PathEscape(r.PathValue("tenant"))
	if err != nil {
		if errors.Is(err, ErrUnknownTenant) {
			controlError(w, err)
			return
		}
		target += "?error=" + url.QueryEscape(err.Error())
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func decodeControl(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	return nil
}

var errBadRequest = errors.New("bad request body")

// controlError answers a refused control call with a 4xx JSON error.
func controlError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, ErrUnknownTenant), errors.Is(err, ErrUnknownUser):
		status = http.StatusNotFound
	case errors.Is(err, ErrNoLicence):
		status = http.StatusConflict
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

var controlTmpl = template.Must(template.New("control").Funcs(template.FuncMap{
	"since": func(t time.Time) string { return t.Format("15:04:05.000") },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Graph simulator</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
.error{color:#a4262c}form{display:inline}fieldset{margin:1rem 0}
</style></head><body>
{{if .Tenant}}
<p><a href="/control">All tenants</a></p>
<h1>{{.Tenant.Name}}</h1>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<dl><dt>Tenant id</dt><dd>{{.Tenant.ID}}</dd><dt>Domain</dt><dd>{{.Tenant.Domain}}</dd>
<dt>Admin</dt><dd>{{.Tenant.AdminEmail}}</dd><dt>Consented</dt><dd>{{.Tenant.Consented}}</dd>
<dt>Enterprise app</dt><dd>{{.Tenant.App}}</dd></dl>
<form method="post" action="/control/tenants/{{.Tenant.ID}}/app">
<label for="app-state">App state</label>
<select id="app-state" name="state"><option>present</option><option>deleted</option>
<option>missing</option><option>disabled</option></select>
<button type="submit">Set</button></form>
<fieldset><legend>Inject a fault</legend>
<form method="post" action="/control/tenants/{{.Tenant.ID}}/faults">
<label for="kind">Kind</label>
<select id="kind" name="kind"><option>throttle</option><option>error</option>
<option>empty-error</option><option>latency</option><option>fail-id</option>
<option>clear</option></select>
<label for="count">Count</label><input id="count" name="count" type="number" min="0" value="1">
<label for="retry">Retry-After (s)</label>
<input id="retry" name="retryAfterSeconds" type="number" min="0" value="2">
<label for="status">Status</label><input id="status" name="status" type="number" value="503">
<label for="latency">Latency (ms)</label>
<input id="latency" name="latencyMs" type="number" min="0" value="0">
<label for="failid">User id</label><input id="failid" name="id">
<button type="submit">Inject</button></form></fieldset>
<p>Requests: {{with .Counts}}tokens {{.Token}}, users {{.Users}}, delta {{.Delta}},
presence reads {{.Presences}} (throttled {{.Throttled}}, failed {{.Failed}}),
single presence {{.Presence}}, setPresence {{.SetPresence}},
clearPresence {{.ClearPresence}}{{end}}</p>
<table><thead><tr><th>Name</th><th>Mail / UPN</th><th>Phones</th><th>Type</th>
<th>Presence</th><th>Changed</th><th>Set</th></tr></thead><tbody>
{{range .Users}}<tr><td>{{.DisplayName}}</td><td>{{.Mail}}<br>{{.UPN}}</td>
<td>{{range .BusinessPhones}}{{.}}<br>{{end}}{{.MobilePhone}}</td>
<td>{{.UserType}}{{if not .AccountEnabled}}, disabled{{end}}{{if not .Licensed}}, no Teams licence{{end}}</td>
<td>{{.Availability}} / {{.Activity}}</td><td>{{since .PresenceChangedAt}}</td>
<td>{{if .Licensed}}<form method="post" action="/control/tenants/{{$.Tenant.ID}}/users/{{.ID}}/presence">
<label for="a-{{.ID}}">Action</label><select id="a-{{.ID}}" name="action">
{{range $.Actions}}<option>{{.}}</option>{{end}}</select>
<button type="submit">Set</button></form>{{end}}</td></tr>
{{end}}</tbody></table>
{{else}}
<h1>Graph simulator</h1>
<table><thead><tr><th>Tenant</th><th>Id</th><th>Users</th><th>Consented</th><th>App</th></tr></thead>
<tbody>{{range .Tenants}}<tr><td><a href="/control/tenants/{{.ID}}">{{.Name}}</a></td>
<td>{{.ID}}</td><td>{{.Users}}</td><td>{{.Consented}}</td><td>{{.App}}</td></tr>{{end}}
</tbody></table>
{{end}}
</body></html>`))

type controlPage struct {
	Tenants []TenantInfo
	Tenant  *TenantInfo
	Users   []controlUser
	Counts  RequestCounts
	Actions []string
	Error   string
}

func (s *Sim) controlIndex(w http.ResponseWriter, r *http.Request) {
	renderControl(w, http.StatusOK, controlPage{Tenants: s.Tenants()})
}

func (s *Sim) controlTenant(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("tenant")
	info, err := s.Tenant(id)
	if err != nil {
		controlError(w, err)
		return
	}
	users, _ := s.controlUsers(id)
	counts, _ := s.RequestCounts(id)
	renderControl(w, http.StatusOK, controlPage{Tenant: &info, Users: users,
		Counts: counts, Actions: actionOrder,
		Error: r.URL.Query().Get("error")})
}

func renderControl(w http.ResponseWriter, status int, page controlPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = controlTmpl.Execute(w, page)
}
