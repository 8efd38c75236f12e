package onboarding

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// browser is a user agent without JavaScript: a cookie jar, redirects
// followed one hop at a time so that a test can check each, and forms
// submitted with the fields the page gave them (CSRF tokens included).
type browser struct {
	t    testing.TB
	name string
	c    *http.Client
	jar  *cookiejar.Jar
}

func newBrowser(t testing.TB, name string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatalf("cookie jar: %v", err)
	}
	return &browser{t: t, name: name, jar: jar, c: &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// hop is one redirect the browser followed.
type hop struct {
	Status   int
	From, To string
}

// page is what the browser shows after a request and its redirects.
type page struct {
	Status int
	URL    *url.URL
	Body   string
	Hops   []hop
	doc    *html.Node
}

// cookie returns the value of the named cookie the jar holds for u.
func (b *browser) cookie(u, name string) string {
	b.t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		b.t.Fatalf("%s: parse %s: %v", b.name, u, err)
	}
	for _, c := range b.jar.Cookies(pu) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// get opens an absolute URL.
func (b *browser) get(u string) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatalf("%s: GET %s: %v", b.name, u, err)
	}
	return b.do(req)
}

// do sends req and follows up to ten redirects with GET, as browsers do
// after 302 and 303 answers.
func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	var hops []hop
	for range 10 {
		resp, err := b.c.Do(req)
		if err != nil {
			b.t.Fatalf("%s: %s %s: %v", b.name, req.Method, req.URL, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		_ = resp.Body.Close()
		if err != nil {
			b.t.Fatalf("%s: read %s: %v", b.name, req.URL, err)
		}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			loc, err := resp.Location()
			if err != nil {
				b.t.Fatalf("%s: %s %s answered %d without a Location", b.name, req.Method,
					req.URL, resp.StatusCode)
			}
			hops = append(hops, hop{Status: resp.StatusCode, From: req.URL.String(),
				To: loc.String()})
			next, err := http.NewRequest(http.MethodGet, loc.String(), nil)
			if err != nil {
				b.t.Fatalf("%s: follow %s: %v", b.name, loc, err)
			}
			req = next
			continue
		}
		p := &page{Status: resp.StatusCode, URL: req.URL, Body: string(body), Hops: hops}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			doc, err := html.Parse(strings.NewReader(p.Body))
			if err != nil {
				b.t.Fatalf("%s: parse the HTML of %s: %v", b.name, req.URL, err)
			}
			p.doc = doc
		}
		return p
	}
	b.t.Fatalf("%s: more than ten redirects from %s", b.name, req.URL)
	return nil
}

// submit presses the button whose text contains button in a form of p,
// sending the form's own fields with the values in set replacing or
// adding to them.
func (b *browser) submit(p *page, button string, set url.Values) *page {
	b.t.Helper()
	f, pressed, ok := p.formWithButton(button)
	if !ok {
		b.t.Fatalf("%s: no form with a %q button on %s (status %d):\n%s", b.name, button,
			p.URL, p.Status, p.Text())
	}
	vals := url.Values{}
	for k, v := range f.fields {
		vals[k] = append([]string(nil), v...)
	}
	for k, v := range set {
		vals[k] = v
	}
	if pressed.name != "" {
		vals.Set(pressed.name, pressed.value)
	}
	action, err := p.URL.Parse(f.action)
	if err != nil {
		b.t.Fatalf("%s: form action %q on %s: %v", b.name, f.action, p.URL, err)
	}
	method := strings.ToUpper(f.method)
	if method == "" {
		method = http.MethodGet
	}
	var req *http.Request
	if method == http.MethodGet {
		action.RawQuery = vals.Encode()
		req, err = http.NewRequest(method, action.String(), nil)
	} else {
		req, err = http.NewRequest(method, action.String(), strings.NewReader(vals.Encode()))
		if req != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		b.t.Fatalf("%s: build the request of %s: %v", b.name, action, err)
	}
	return b.do(req)
}

// htmlForm is a form as the page delivered it.
type htmlForm struct {
	action, method string
	fields         url.Values
	buttons        []htmlButton
}

type htmlButton struct{ text, name, value string }

// forms lists the page's forms with their fields and buttons.
func (p *page) forms() []htmlForm {
	var out []htmlForm
	var walk func(n *html.Node, f *htmlForm)
	walk = func(n *html.Node, f *htmlForm) {
		if n.Type == html.ElementNode {
			switch n.DataAtom {
			case atom.Form:
				nf := htmlForm{action: attr(n, "action"), method: attr(n, "method"),
					fields: url.Values{}}
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					walk(c, &nf)
				}
				out = append(out, nf)
				return
			case atom.Input:
				if f != nil && attr(n, "name") != "" {
					switch attr(n, "type") {
					case "checkbox", "radio":
						if hasAttr(n, "checked") {
							f.fields.Add(attr(n, "name"), attr(n, "value"))
						}
					case "submit", "button", "file":
					default:
						f.fields.Add(attr(n, "name"), attr(n, "value"))
					}
				}
			case atom.Textarea:
				if f != nil && attr(n, "name") != "" {
					f.fields.Add(attr(n, "name"), textOf(n))
				}
			case atom.Button:
				if f != nil {
					f.buttons = append(f.buttons, htmlButton{text: textOf(n),
						name: attr(n, "name"), value: attr(n, "value")})
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, f)
		}
	}
	if p.doc != nil {
		walk(p.doc, nil)
	}
	return out
}

func (p *page) formWithButton(text string) (htmlForm, htmlButton, bool) {
	for _, f := range p.forms() {
		for _, b := range f.buttons {
			if strings.Contains(b.text, text) {
				return f, b, true
			}
		}
	}
	return htmlForm{}, htmlButton{}, false
}

// hasButton reports whether a form of the page has a button with text.
func (p *page) hasButton(text string) bool {
	_, _, ok := p.formWithButton(text)
	return ok
}

// Text is the page's visible text with runs of white space as one space.
func (p *page) Text() string {
	if p.doc == nil {
		return p.Body
	}
	return textOf(p.doc)
}

// listsUnder returns the items of the lists that follow each h3 heading of
// the page, by heading text.
func (p *page) listsUnder() map[string][]string {
	out := map[string][]string{}
	heading := ""
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.DataAtom {
			case atom.H3:
				heading = textOf(n)
				return
			case atom.Li:
				if heading != "" {
					out[heading] = append(out[heading], textOf(n))
				}
				return
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	if p.doc != nil {
		walk(p.doc)
	}
	return out
}

// attrValue returns the named attribute of the first element that has it.
func (p *page) attrValue(name string) string {
	var found string
	var walk func(n *html.Node) bool
	walk = func(n *html.Node) bool {
		if n.Type == html.ElementNode && hasAttr(n, name) {
			found = attr(n, name)
			return true
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if walk(c) {
				return true
			}
		}
		return false
	}
	if p.doc != nil {
		walk(p.doc)
	}
	return found
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, name string) bool {
	for _, a := range n.Attr {
		if a.Key == name {
			return true
		}
	}
	return false
}

// textOf joins the text below n, leaving out scripts and styles.
func textOf(n *html.Node) string {
	var sb strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.DataAtom == atom.Script || n.DataAtom == atom.Style) {
			return
		}
		if n.Type == html.TextNode {
			sb.WriteString(n.Data)
			sb.WriteByte(' ')
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(sb.String()), " ")
}

// wantText fails the test unless the page's text holds every phrase.
func wantText(t testing.TB, p *page, phrases ...string) {
	t.Helper()
	text := p.Text()
	for _, ph := range phrases {
		if !strings.Contains(text, ph) {
			t.Fatalf("%s (status %d) does not say %q; it says:\n%s", p.URL, p.Status, ph, text)
		}
	}
}

// wantStatus fails the test unless the page answered status.
func wantStatus(t testing.TB, p *page, status int) {
	t.Helper()
	if p.Status != status {
		t.Fatalf("%s answered %d, want %d:\n%s", p.URL, p.Status, status, p.Text())
	}
}

func (h hop) String() string { return fmt.Sprintf("%d %s -> %s", h.Status, h.From, h.To) }
