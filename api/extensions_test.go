package api

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/pbx/csvdir"
	"github.com/setera/onesync/store"
)

func csvDeployment(d *Deps) { d.DirectorySource = DirectoryCSV }

// storedNumbers lists the organisation's stored extensions as
// "number email" strings, in the store's order.
func storedNumbers(t *testing.T, e *env, org string) []string {
	t.Helper()
	exts, err := e.db.Extensions(context.Background(), org)
	if err != nil {
		t.Fatalf("read extensions: %v", err)
	}
	var out []string
	for _, x := range exts {
		out = append(out, x.Number+" "+x.Email)
	}
	return out
}

func wantStored(t *testing.T, e *env, org string, want ...string) {
	t.Helper()
	got := storedNumbers(t, e, org)
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("stored extensions %q, want %q", got, want)
	}
}

// linkTeamsUsers binds tenantA to the organisation and links two Teams
// users, as an import would have.
func linkTeamsUsers(t *testing.T, e *env, org string) {
	t.Helper()
	ctx := context.Background()
	if err := e.db.BindTenant(ctx, tenantA, org, e.clock()); err != nil {
		t.Fatal(err)
	}
	err := e.db.ReplaceLinks(ctx, tenantA, []store.Link{
		{UserID: "u1", Extension: "201", DisplayName: "Aino Admin", Email: "Aino@Acme.example",
			MatchedBy: "csv"},
		{UserID: "u2", Extension: "202", DisplayName: "Bo Berg", Email: "bo@acme.example",
			MatchedBy: "csv"},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestExtensionsUpload(t *testing.T) {
	e := newEnv(t, csvDeployment)
	admin, org := e.register("Acme Oy", "aino@acme.example")
	page := "/orgs/" + org + "/settings/extensions"

	wantText(t, admin.get("/orgs/"+org+"/settings/teams"), "Open Settings > Extensions",
		"No list is uploaded yet")
	first := admin.get(page)
	wantStatus(t, first, http.StatusOK)
	wantText(t, first, "Upload a CSV file", "No list is uploaded yet",
		"Extension list (CSV, up to 5 MB)")

	// Before Teams is connected the list is stored, but no match is known.
	a := admin.upload(page, page, "early.csv", []byte("carl@acme.example,203\n"))
	wantStatus(t, a, http.StatusOK)
	wantText(t, a, "Stored 1 extension.", "Teams is not connected, so OneSync cannot tell")
	wantStored(t, e, org, "203 carl@acme.example")

	linkTeamsUsers(t, e, org)
	good := "Email;Extension;Name\r\nAINO@acme.example;201;Aino A\r\n" +
		"bo@acme.example;205\r\ncarl@acme.example;203;Carl\r\n"
	a = admin.upload(page, page, "acme.csv", []byte("\uFEFF"+good))
	wantStatus(t, a, http.StatusOK)
	wantText(t, a, "Stored 3 extensions. 2 of them match a Teams user.", "What was stored",
		"2 of 3 rows match a Teams user",
		"1 aino@acme.example 201 Aino A Aino Admin",
		"2 bo@acme.example 205 Bo Berg (linked to 202 now; connecting Teams again moves the link)",
		"3 carl@acme.example 203 Carl no Teams user with this address")
	wantStored(t, e, org, "201 aino@acme.example", "203 carl@acme.example",
		"205 bo@acme.example")

	audit, err := e.db.AuditByOrg(context.Background(), org, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) == 0 || audit[0].Action != "extensions-uploaded" ||
		!strings.HasPrefix(audit[0].Actor, "admin:") ||
		audit[0].Detail != "3 extensions from acme.csv" {
		t.Errorf("newest audit entry %+v", audit)
	}

	// The page shows the current list, by extension, with its matches.
	wantText(t, admin.get(page), "Your current list",
		"1 aino@acme.example 201 Aino A Aino Admin",
		"2 carl@acme.example 203 Carl no Teams user with this address",
		"3 bo@acme.example 205 Bo Berg")
	wantText(t, admin.get("/orgs/"+org+"/settings/teams"), "The list holds 3 extensions.")
}

func TestExtensionsUploadRefused(t *testing.T) {
	e := newEnv(t, csvDeployment)
	admin, org := e.register("Acme Oy", "aino@acme.example")
	linkTeamsUsers(t, e, org)
	page := "/orgs/" + org + "/settings/extensions"
	previous := []pbx.Extension{{Number: "201", Email: "aino@acme.example"},
		{Number: "202", Email: "bo@acme.example"}}
	if err := e.db.SetExtensions(context.Background(), org, previous); err != nil {
		t.Fatal(err)
	}
	keep := []string{"201 aino@acme.example", "202 bo@acme.example"}

	t.Run("bad rows", func(t *testing.T) {
		bad := "email,extension\n" +
			"carl@acme.example,203\n" +
			"not-an-address,204\n" +
			"dora@acme.example,\n" +
			"carl@acme.example,206\n" +
			"eve@acme.example,20 7\n"
		a := admin.upload(page, page, "bad.csv", []byte(bad))
		wantStatus(t, a, http.StatusUnprocessableEntity)
		wantText(t, a, "The file was not used: fix the 4 problems listed here",
			"Nothing was changed; your previous list below stays as it was",
			`Line 3: "not-an-address" is not an email address or UPN`,
			"Line 4: the extension is missing",
			"Line 5: carl@acme.example is already on line 2",
			`Line 6: extension "20 7" may hold only`,
			"Your current list", "1 aino@acme.example 201 Aino Admin",
			"2 bo@acme.example 202 Bo Berg")
		if strings.Contains(text(a.Body), "Line 2:") {
			t.Error("the good row 2 is reported as bad")
		}
		wantStored(t, e, org, keep...)
	})

	t.Run("empty file", func(t *testing.T) {
		a := admin.upload(page, page, "empty.csv", []byte("email,extension\n"))
		wantStatus(t, a, http.StatusUnprocessableEntity)
		wantText(t, a, "The file holds no rows. Nothing was changed")
		wantStored(t, e, org, keep...)
	})

	t.Run("no file", func(t *testing.T) {
		a := admin.post(page, page, url.Values{})
		wantStatus(t, a, http.StatusUnprocessableEntity)
		wantText(t, a, "Choose a CSV file to upload")
		wantStored(t, e, org, keep...)
	})

	t.Run("file just over the limit", func(t *testing.T) {
		a := admin.upload(page, page, "big.csv", bigCSV(csvdir.MaxBytes+1))
		wantStatus(t, a, http.StatusRequestEntityTooLarge)
		wantText(t, a, "The file is larger than 5 MB. Nothing was changed")
		wantStored(t, e, org, keep...)
	})

	t.Run("body far over the limit", func(t *testing.T) {
		a := admin.upload(page, page, "huge.csv", bigCSV(uploadBodyBytes+1))
		wantStatus(t, a, http.StatusRequestEntityTooLarge)
		wantText(t, a, "This file is too large",
			"OneSync accepts extension lists of up to 5 MB. Nothing was changed")
		wantStored(t, e, org, keep...)
	})

	t.Run("without CSRF token", func(t *testing.T) {
		a := admin.upload("", page, "acme.csv", []byte("carl@acme.example,203\n"))
		wantStatus(t, a, http.StatusForbidden)
		wantText(t, a, "This form has expired")
		wantStored(t, e, org, keep...)
	})
}

// bigCSV is a well-formed extension file of at least n bytes.
func bigCSV(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.WriteString("someone.with.a.long.address" + strings.Repeat("x", 40) +
			"@acme.example,1\n")
	}
	return b.Bytes()
}

func TestExtensionsOneCloudDeployment(t *testing.T) {
	e := newEnv(t)
	admin, org := e.register("Acme Oy", "aino@acme.example")
	page := "/orgs/" + org + "/settings/extensions"

	wantText(t, admin.get("/orgs/"+org+"/settings/teams"),
		"OneSync reads your extensions from the OneCloud directory")
	a := admin.get(page)
	wantStatus(t, a, http.StatusOK)
	wantText(t, a, "OneSync reads your extensions from the OneCloud directory")
	if strings.Contains(a.Body, `type="file"`) {
		t.Error("the upload is offered where the OneCloud directory is read")
	}

	up := admin.upload("/orgs/"+org, page, "acme.csv", []byte("carl@acme.example,203\n"))
	wantStatus(t, up, http.StatusConflict)
	wantText(t, up, "This deployment does not take an extension list", "Nothing was stored")
	wantStored(t, e, org)
}

func TestDirectorySourceValidated(t *testing.T) {
	e := newEnv(t)
	_, err := NewServer(Deps{Temporal: e.tc, Store: e.db, DirectorySource: "ldap"})
	if err == nil || !strings.Contains(err.Error(), `directory source "ldap"`) {
		t.Errorf("NewServer with an unknown directory source: %v", err)
	}
}
