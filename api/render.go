package api

import (
	"bytes"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/setera/onesync/workflows"
)

// page is what every template receives.
type page struct {
	Title string
	// Area is "portal" or "staff"; it picks the navigation.
	Area string
	// Nav names the active navigation item.
	Nav string
	// CSRF is the token every form of the page posts back.
	CSRF string
	// Who is the signed-in person's name, empty when nobody is signed in.
	Who string
	// OrgID is the signed-in admin's organisation, for portal links.
	OrgID string
	// Refresh, when above 0, reloads the page after that many seconds:
	// waiting states refresh themselves, with JavaScript or without.
	Refresh int
	// Notice is a message about what just happened, shown on top.
	Notice string
	// Data is the page's own content.
	Data any
}

// render writes a page with the given status. Rendering into a buffer first
// means a template error becomes a clean error page, not half a page.
func (s *server) render(c *gin.Context, status int, name string, p page) {
	t, ok := s.pages[name]
	if !ok {
		s.log.Error("missing page template", zap.String("page", name))
		c.String(http.StatusInternalServerError, "This page is missing. Please tell Setera.")
		return
	}

	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("render page", zap.String("page", name), zap.Error(err))
		c.String(http.StatusInternalServerError,
			"This page could not be shown. Reload it; if it keeps failing, tell Setera.")
		return
	}

	h := c.Writer.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Pages show account data: browsers and proxies must not keep them.
	h.Set("Cache-Control", "no-store")
	c.Status(status)
	_, _ = c.Writer.Write(buf.Bytes())
}

// problem is the content of an error page: what went wrong and what to do.
type problem struct {
	Heading string
	Message string
	// Action is a link that helps, with its label.
	ActionURL   string
	ActionLabel string
}

func (s *server) problem(c *gin.Context, status int, area string, pr problem) {
	s.render(c, status, "problem", page{Title: pr.Heading, Area: area, Data: pr})
}

func (s *server) notFound(c *gin.Context) {
	area := "portal"
	if strings.HasPrefix(c.Request.URL.Path, "/staff") {
		area = "staff"
	}
	s.problem(c, http.StatusNotFound, area, problem{
		Heading:     "Page not found",
		Message:     "There is no such page, or it is not yours to see. Check the address.",
		ActionURL:   "/",
		ActionLabel: "Go to the start page",
	})
}

// internal logs an unexpected failure and shows a page that says what to do.
func (s *server) internal(c *gin.Context, area, what string, err error) {
	s.log.Error(what, zap.String("path", c.FullPath()), zap.Error(err))
	s.problem(c, http.StatusInternalServerError, area, problem{
		Heading: "Something went wrong on our side",
		Message: "OneSync could not " + what + ". Nothing you typed was wrong. " +
			"Wait a minute and try again; if it keeps failing, tell Setera support.",
		ActionURL:   c.Request.URL.Path,
		ActionLabel: "Try again",
	})
}

func (s *server) badCSRF(c *gin.Context, area, back string) {
	s.problem(c, http.StatusForbidden, area, problem{
		Heading: "This form has expired",
		Message: "For your safety OneSync accepts a form only from the page that showed it. " +
			"Open the page again and send the form once more.",
		ActionURL:   back,
		ActionLabel: "Open the form again",
	})
}

// fieldView is one form field as the field partial draws it.
type fieldView struct {
	Name, Label, Type, Value, Error, Hint, Autocomplete string
	Max                                                 int
}

// templateFuncs are the helpers the templates call; age reads the server's
// clock so that "3 days ago" agrees with the rest of the page.
func (s *server) templateFuncs() template.FuncMap {
	return template.FuncMap{
		// field prepares a form field: name, label, input type, autocomplete.
		"field": func(f *form, name, label, typ, autocomplete string, max int, hint string) fieldView {
			v := fieldView{Name: name, Label: label, Type: typ, Autocomplete: autocomplete,
				Max: max, Hint: hint}
			if f != nil {
				v.Value = f.Values[name]
				v.Error = f.Errors[name]
			}
			if typ == "password" {
				v.Value = ""
			}
			return v
		},
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.UTC().Format("2 Jan 2006 15:04 UTC")
		},
		"iso":        func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"age":        func(t time.Time) string { return age(s.now(), t) },
		"plural":     plural,
		"activated":  activatedText,
		"stateWord":  func(v string) string { return stateWords[v] },
		"stageWord":  stageWord,
		"actionWord": func(v string) string { return actionWords[v] },
		"list":       func(v ...string) []string { return v },
	}
}

var stateWords = map[string]string{
	"done": "done", "current": "in progress", "failed": "stopped", "todo": "still to come",
}

var actionWords = map[string]string{
	"pause": "Pause the sync", "resume": "Resume the sync", "resync-users": "Re-import users",
}

// stageWord names an onboarding stage for people.
func stageWord(stage string) string {
	switch workflows.Stage(stage) {
	case workflows.StageAwaitingApproval:
		return "waiting for approval"
	case workflows.StageRejected:
		return "rejected"
	case workflows.StageExpired:
		return "expired"
	case workflows.StageAwaitingConsent:
		return "waiting for Teams consent"
	case workflows.StageImporting:
		return "importing users"
	case workflows.StageSyncing:
		return "syncing"
	case "":
		return "unknown"
	}
	return stage
}

// activatedText is the sentence of the import result.
func activatedText(n int) string {
	if n == 1 {
		return "1 user has been activated"
	}
	return strconv.Itoa(n) + " users have been activated"
}

// age says how long before now t was, in words a person reads at a glance.
func age(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < 2*time.Minute:
		return "just now"
	case d < 2*time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	default:
		return plural(int(d/(24*time.Hour)), "day") + " ago"
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
