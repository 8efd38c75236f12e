// Package web holds the HTML templates and static files of the portal and
// the staff pages, embedded into the binary so that the pages work offline
// and need no CDN. It only parses; the api package decides what to render.
package web

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"path"
	"strings"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Static returns the static files (CSS, JavaScript) rooted at their folder,
// to be served under /static/.
func Static() fs.FS {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		// The folder is embedded at build time; a missing one is a build bug.
		panic(fmt.Sprintf("web: static folder missing: %v", err))
	}
	return sub
}

// Pages parses every page template together with the shared layout and
// partials, and returns them by page name (the file name without .html).
// Files whose names start with an underscore are shared, not pages.
func Pages(funcs template.FuncMap) (map[string]*template.Template, error) {
	entries, err := fs.ReadDir(templateFS, "templates")
	if err != nil {
		return nil, fmt.Errorf("read templates: %w", err)
	}

	var shared, pages []string
	for _, e := range entries {
		name := "templates/" + e.Name()
		if strings.HasPrefix(e.Name(), "_") {
			shared = append(shared, name)
		} else {
			pages = append(pages, name)
		}
	}

	out := make(map[string]*template.Template, len(pages))
	for _, p := range pages {
		files := append([]string{p}, shared...)
		t, err := template.New(path.Base(p)).Funcs(funcs).ParseFS(templateFS, files...)
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", p, err)
		}
		out[strings.TrimSuffix(path.Base(p), ".html")] = t
	}
	return out, nil
}
