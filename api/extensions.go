package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/pbx/csvdir"
	"github.com/setera/onesync/store"
)

// extensionsRoute is the route of Settings > Extensions; limitBody gives
// its multipart upload a larger limit than other forms.
const extensionsRoute = "/orgs/:org/settings/extensions"

// uploadBodyBytes bounds an upload's request body: the file's own limit
// plus room for the multipart framing and the CSRF field.
const uploadBodyBytes = csvdir.MaxBytes + 64<<10

// fileField is the form field of the uploaded CSV.
const fileField = "file"

// extensionsView is Settings > Extensions.
type extensionsView struct {
	// CSV is true when this deployment matches Teams users to an uploaded
	// list; false when the OneCloud directory is read and nothing is
	// uploaded.
	CSV bool
	// Rows are the stored list with each row's Teams user: just uploaded
	// in file order when Stored, else the current list by extension.
	Rows []extensionRow
	// Stored is true right after an upload replaced the list.
	Stored bool
	// Matched counts the rows with a Teams user.
	Matched int
	// Connected is true when a tenant is connected, so Teams users are
	// known; the match column is shown only then.
	Connected bool
	// Problems lists every bad row of a refused upload; FileError is a
	// problem of the file as a whole. Either means nothing was stored.
	Problems  []csvdir.RowError
	FileError string
	MaxMB     int
}

// extensionRow is one row of the list with the linked Teams user whose
// address it carries, if any.
type extensionRow struct {
	N         int
	Extension pbx.Extension
	// User is the matched Teams user's name; empty when none.
	User string
	// LinkedTo is the extension the user is linked to now, when it is
	// another one: connecting Teams again moves the link.
	LinkedTo string
}

func (s *server) extensions(c *gin.Context) {
	s.showExtensions(c, http.StatusOK, extensionsView{})
}

// showExtensions fills in the current list (unless v already holds the
// rows just stored) and the matches, and renders the page.
func (s *server) showExtensions(c *gin.Context, status int, v extensionsView) {
	ctx := c.Request.Context()
	o := c.MustGet(ctxOrg).(store.Org)
	v.CSV = s.d.DirectorySource == DirectoryCSV
	v.MaxMB = csvdir.MaxBytes >> 20

	if v.CSV {
		exts := make([]pbx.Extension, 0, len(v.Rows))
		for _, r := range v.Rows {
			exts = append(exts, r.Extension)
		}
		if !v.Stored {
			var err error
			if exts, err = s.d.Store.Extensions(ctx, o.ID); err != nil {
				s.internal(c, "portal", "read your extension list", err)
				return
			}
		}
		rows, connected, err := s.matchRows(c, o.ID, exts)
		if err != nil {
			s.internal(c, "portal", "compare the list with your Teams users", err)
			return
		}
		v.Rows, v.Connected = rows, connected
		for _, r := range rows {
			if r.User != "" {
				v.Matched++
			}
		}
	}
	s.render(c, status, "extensions", adminPage(c, "Settings > Extensions", "teams", v))
}

// matchRows pairs each extension with the organisation's linked Teams
// user of the same address, compared case-insensitively. connected is
// false when no active tenant is bound: then no Teams user is known.
func (s *server) matchRows(c *gin.Context, orgID string, exts []pbx.Extension) (
	rows []extensionRow, connected bool, err error) {
	ctx := c.Request.Context()
	rows = make([]extensionRow, 0, len(exts))
	for i, e := range exts {
		rows = append(rows, extensionRow{N: i + 1, Extension: e})
	}

	t, err := s.d.Store.TenantByOrg(ctx, orgID)
	if errors.Is(err, store.ErrNotFound) {
		return rows, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if t.State != store.TenantActive {
		return rows, false, nil
	}
	links, err := s.d.Store.Links(ctx, t.ID)
	if err != nil {
		return nil, false, err
	}
	byEmail := make(map[string]store.Link, len(links))
	for _, l := range links {
		k := strings.ToLower(strings.TrimSpace(l.Email))
		if _, dup := byEmail[k]; k != "" && !dup {
			byEmail[k] = l
		}
	}
	for i := range rows {
		l, ok := byEmail[strings.ToLower(strings.TrimSpace(rows[i].Extension.Email))]
		if !ok {
			continue
		}
		rows[i].User = l.DisplayName
		if rows[i].User == "" {
			rows[i].User = l.Email
		}
		if l.Extension != rows[i].Extension.Number {
			rows[i].LinkedTo = l.Extension
		}
	}
	return rows, true, nil
}

// uploadExtensions replaces the organisation's extension list with an
// uploaded CSV. A file with any bad row is refused whole, with every bad
// row and its line shown, so the previous list stays as it was.
func (s *server) uploadExtensions(c *gin.Context) {
	ctx := c.Request.Context()
	o := c.MustGet(ctxOrg).(store.Org)
	a := c.MustGet(ctxAdmin).(store.Admin)

	if s.d.DirectorySource != DirectoryCSV {
		s.problem(c, http.StatusConflict, "portal", problem{
			Heading: "This deployment does not take an extension list",
			Message: "OneSync reads your extensions from the OneCloud directory, so an " +
				"uploaded list would not be used. Nothing was stored.",
			ActionURL:   "/orgs/" + o.ID + "/settings/teams",
			ActionLabel: "Back to Settings > Teams"})
		return
	}
	refuse := func(status int, v extensionsView) {
		s.showExtensions(c, status, v)
	}

	fh, err := c.FormFile(fileField)
	if err != nil {
		refuse(http.StatusUnprocessableEntity, extensionsView{
			FileError: "Choose a CSV file to upload. Nothing was changed."})
		return
	}
	if fh.Size > csvdir.MaxBytes {
		refuse(http.StatusRequestEntityTooLarge, extensionsView{FileError: "The file is " +
			"larger than " + strconv.Itoa(csvdir.MaxBytes>>20) + " MB. Nothing was changed; " +
			"split the list or remove columns OneSync does not need."})
		return
	}
	f, err := fh.Open()
	if err != nil {
		s.internal(c, "portal", "read the uploaded file", err)
		return
	}
	defer f.Close()

	exts, err := csvdir.Parse(f)
	var bad *csvdir.Error
	switch {
	case errors.As(err, &bad):
		refuse(http.StatusUnprocessableEntity, extensionsView{Problems: bad.Rows})
		return
	case err != nil:
		refuse(http.StatusUnprocessableEntity, extensionsView{
			FileError: "OneSync could not use this file: " + err.Error() +
				". Nothing was changed."})
		return
	case len(exts) == 0:
		refuse(http.StatusUnprocessableEntity, extensionsView{
			FileError: "The file holds no rows. Nothing was changed: each row needs an " +
				"email address or UPN and an extension."})
		return
	}

	if err := s.d.Store.SetExtensions(ctx, o.ID, exts); err != nil {
		s.internal(c, "portal", "store your extension list", err)
		return
	}
	s.audit(ctx, "admin:"+a.ID, o.ID, "extensions-uploaded",
		plural(len(exts), "extension")+" from "+clip(fh.Filename, 100))
	s.log.Info("extension list uploaded", zap.String("org", o.ID), zap.Int("rows", len(exts)))

	rows := make([]extensionRow, 0, len(exts))
	for _, e := range exts {
		rows = append(rows, extensionRow{Extension: e})
	}
	s.showExtensions(c, http.StatusOK, extensionsView{Rows: rows, Stored: true})
}
