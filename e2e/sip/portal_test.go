package sip_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/setera/onesync/devstack"
	"github.com/setera/onesync/devstack/devstacktest"
	"github.com/setera/onesync/workflows"
)

// portal is an admin's browser without JavaScript: a cookie jar and the
// forms of the portal, posted with their CSRF token.
type portal struct {
	t    *testing.T
	base string
	http *http.Client
}

func newPortal(t *testing.T, base string) *portal {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &portal{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// csrfRE finds the hidden CSRF field every form of the portal carries.
var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get fetches path and returns the final response's status, path and body.
func (p *portal) get(path string) (int, string, string) {
	p.t.Helper()
	res, err := p.http.Get(p.base + path)
	if err != nil {
		p.t.Fatalf("GET %s: %v", path, err)
	}
	return p.read(res)
}

// csrf fetches the page at path and returns the token of its form.
func (p *portal) csrf(path string) string {
	p.t.Helper()
	code, _, body := p.get(path)
	m := csrfRE.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil {
		p.t.Fatalf("GET %s: %d, no CSRF field in:\n%s", path, code, body)
	}
	return m[1]
}

func (p *portal) read(res *http.Response) (int, string, string) {
	p.t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		p.t.Fatalf("read %s: %v", res.Request.URL, err)
	}
	return res.StatusCode, res.Request.URL.Path, string(b)
}

// register fills in the register form and returns the id of the new
// organisation, taken from the dashboard the portal redirects to.
func (p *portal) register(orgName, email, password string) string {
	p.t.Helper()
	form := url.Values{
		"csrf":     {p.csrf("/register")},
		"org_name": {orgName},
		// The form asks every organisation for its OneCloud customer id,
		// also in a SIP deployment, where nothing uses it.
		"pbx_org":          {"demo-oy"},
		"name":             {"Admin of " + orgName},
		"email":            {email},
		"phone":            {"+358 40 123 4567"},
		"password":         {password},
		"password_confirm": {password},
	}
	res, err := p.http.PostForm(p.base+"/register", form)
	if err != nil {
		p.t.Fatalf("POST /register: %v", err)
	}
	code, path, body := p.read(res)
	id, ok := strings.CutPrefix(path, "/orgs/")
	if code != http.StatusOK || !ok || id == "" || strings.Contains(id, "/") {
		p.t.Fatalf("register: %d at %s:\n%s", code, path, body)
	}
	return id
}

// uploadExtensions posts csv on Settings > Extensions as the file an admin
// chose, and returns the page the portal answers with.
func (p *portal) uploadExtensions(orgID, filename, csv string) (int, string) {
	p.t.Helper()
	path := "/orgs/" + orgID + "/settings/extensions"
	token := p.csrf(path)

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if err := mw.WriteField("csrf", token); err != nil {
		p.t.Fatal(err)
	}
	fw, err := mw.CreateFormFile("file", filename)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := io.WriteString(fw, csv); err != nil {
		p.t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		p.t.Fatal(err)
	}
	res, err := p.http.Post(p.base+path, mw.FormDataContentType(), &body)
	if err != nil {
		p.t.Fatalf("POST %s: %v", path, err)
	}
	code, _, page := p.read(res)
	return code, page
}

// connectThroughPortal onboards tenantID the way a SIP customer does: the
// admin registers on the portal and uploads the extension list before
// Teams is connected; staff approval and the admin consent are signalled
// as devstacktest.Connect does, without the browser. It returns the
// organisation's id, the import's result and the admin's portal session.
func connectThroughPortal(t *testing.T, s *devstack.Stack, orgName, tenantID, csv string) (
	string, workflows.ImportResult, *portal) {
	t.Helper()
	p := newPortal(t, s.PortalURL)
	orgID := p.register(orgName, "admin@"+strings.ToLower(strings.ReplaceAll(orgName, " ", "-"))+
		".example", randomPassword())

	code, page := p.uploadExtensions(orgID, "extensions.csv", csv)
	if code != http.StatusOK || !strings.Contains(page, "Stored ") {
		t.Fatalf("upload: %d\n%s", code, page)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := workflows.OnboardingID(orgID)
	devstacktest.Eventually(t, time.Minute, "the onboarding of "+orgID+" runs", func() error {
		_, err := s.Client.DescribeWorkflowExecution(ctx, id, "")
		return err
	})
	signal := func(name string, arg any) {
		t.Helper()
		if err := s.Client.SignalWorkflow(ctx, id, "", name, arg); err != nil {
			t.Fatalf("signal %s to %s: %v", name, id, err)
		}
	}
	signal(workflows.SignalApprove, workflows.ApproveSignal{Staff: s.StaffEmail, Note: "test"})
	if err := s.Graph.Consent(tenantID); err != nil {
		t.Fatalf("consent in the Graph simulator: %v", err)
	}
	signal(workflows.SignalConsentGranted,
		workflows.ConsentGrantedSignal{TenantID: tenantID, By: "admin of " + orgID})

	var res workflows.ImportResult
	if err := s.Client.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
		t.Fatalf("onboarding of %s: %v", orgID, err)
	}
	devstacktest.WaitSyncing(t, s, tenantID)
	return orgID, res, p
}

// randomPassword makes an admin password for this run only.
func randomPassword() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("no randomness: %v", err))
	}
	return hex.EncodeToString(b)
}
