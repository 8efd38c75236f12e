// Package browsertest runs Debian's chromium headless for a test and
// watches every tab it opens: a console error, an uncaught exception, a
// request that fails and a response of status 400 or more are problems
// that fail the test unless the test said it expects them. A page that
// only looks loaded is not enough; this is how a browser test notices what
// a person would see go wrong.
//
// The browser starts with a fresh profile folder, without the sandbox, the
// GPU, background networking, component updates, sync or QUIC, so that it
// contacts nothing but the loopback servers of the test.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/setera/onesync/internal/testutil"
)

// ScreenshotsEnv names the folder Shot writes into; without it the
// screenshots go to a temporary folder of the test.
const ScreenshotsEnv = "ONESYNC_SCREENSHOTS"

// Timeout bounds one step of a test: a navigation, a click, a wait.
const Timeout = 60 * time.Second

// Path finds Debian's chromium (or another Chromium-based browser on the
// PATH), or returns "".
func Path() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Require skips t when chromium is missing, or fails it under
// ONESYNC_REQUIRE_ALL=1, and returns the browser's path. A test calls it
// before it starts anything costly that it would not need without a
// browser.
func Require(t testing.TB) string {
	t.Helper()
	path := Path()
	testutil.RequireOrSkip(t, path != "",
		"chromium is not installed (apt-get install chromium)")
	return path
}

// Expected is a failed request that a test expects, so that it is not a
// problem. A request matches when its URL matches URL and its status is
// Status, or, for a request that got no answer, when its error text is
// Failure.
type Expected struct {
	URL     *regexp.Regexp
	Status  int
	Failure string
	// Why says why the test expects the failure; it is shown when a list
	// of problems is printed.
	Why string
}

// URLIs matches exactly the URL u, for Expected.URL.
func URLIs(u string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(u) + `$`)
}

func (e Expected) matches(url string, status int, failure string) bool {
	if !e.URL.MatchString(url) {
		return false
	}
	if failure != "" {
		return e.Failure == failure
	}
	return e.Status == status
}

// Browser is one chromium for one test.
type Browser struct {
	t     testing.TB
	root  context.Context
	shots string

	mu       sync.Mutex
	expected []Expected
	problems []string
	reported int
	shotSeq  int
}

// Start runs chromium for t and stops it when t ends. Without chromium
// the test is skipped, or fails under ONESYNC_REQUIRE_ALL=1. Before the
// browser stops, any problem not yet reported fails the test.
func Start(t testing.TB) *Browser {
	t.Helper()
	path := Require(t)

	shots := os.Getenv(ScreenshotsEnv)
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatalf("screenshot folder %s: %v", shots, err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &Browser{t: t, shots: shots}
	root, cancelRoot := chromedp.NewContext(alloc, chromedp.WithListener(b.watch("first tab")))
	b.root = root
	t.Cleanup(func() {
		b.Check(t)
		cancelRoot()
		cancelAlloc()
	})

	// The first run starts the browser; it must have no deadline, which
	// would stop the whole browser when it passes.
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("start chromium %s: %v", path, err)
	}
	t.Logf("screenshots go to %s", shots)
	return b
}

// Expect adds failed requests the test expects.
func (b *Browser) Expect(e ...Expected) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expected = append(b.expected, e...)
}

// Check fails t with every problem seen since the last Check.
func (b *Browser) Check(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	fresh := b.problems[b.reported:]
	b.reported = len(b.problems)
	b.mu.Unlock()
	for _, p := range fresh {
		t.Errorf("browser: %s", p)
	}
}

// Problems returns every problem seen so far.
func (b *Browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

func (b *Browser) problem(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

func (b *Browser) isExpected(url string, status int, failure string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.expected {
		if e.matches(url, status, failure) {
			return true
		}
	}
	return false
}

// watch returns the listener of one tab. It runs in the loop that reads
// the tab's messages, so it only records.
func (b *Browser) watch(tab string) func(ev any) {
	var mu sync.Mutex
	urls := map[network.RequestID]string{}
	return func(ev any) {
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			mu.Lock()
			urls[ev.RequestID] = ev.Request.URL
			mu.Unlock()
		case *network.EventResponseReceived:
			st := int(ev.Response.Status)
			if st >= 400 && !b.isExpected(ev.Response.URL, st, "") {
				b.problem("%s: %s answered %d %s", tab, ev.Response.URL, st,
					ev.Response.StatusText)
			}
		case *network.EventLoadingFailed:
			mu.Lock()
			url := urls[ev.RequestID]
			mu.Unlock()
			if !b.isExpected(url, 0, ev.ErrorText) {
				b.problem("%s: %s request %s failed: %s (canceled %t, blocked %q)", tab,
					ev.Type, url, ev.ErrorText, ev.Canceled, ev.BlockedReason)
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				b.problem("%s: console error: %s", tab, argsText(ev.Args))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				text += " " + d.Exception.Description
			}
			b.problem("%s: uncaught exception at %s:%d: %s", tab, d.URL, d.LineNumber+1, text)
		case *log.EventEntryAdded:
			// Network entries repeat the failed requests above, which the
			// expected list already judges; the rest (a blocked script, a
			// content security policy violation) are errors of the page.
			e := ev.Entry
			if e.Level == log.EntryLevelError && e.Source != log.EntrySourceNetwork {
				b.problem("%s: %s error: %s (%s)", tab, e.Source, e.Text, e.URL)
			}
		}
	}
}

func argsText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		switch {
		case len(a.Value) > 0:
			parts = append(parts, string(a.Value))
		case a.Description != "":
			parts = append(parts, a.Description)
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

// Tab is one page of the browser, watched for problems.
type Tab struct {
	b    *Browser
	t    testing.TB
	name string
	// Ctx runs chromedp actions in this tab.
	Ctx context.Context
}

// NewTab opens a tab in a browser context of its own: it shares no
// cookies with the other tabs, as if another person used another
// browser. name labels its problems and screenshots.
func (b *Browser) NewTab(t testing.TB, name string) *Tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.root, chromedp.WithNewBrowserContext(),
		chromedp.WithListener(b.watch(name)))
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open tab %s: %v", name, err)
	}
	return &Tab{b: b, t: t, name: name, Ctx: ctx}
}

// Do runs the actions with the step timeout and fails the test with what
// the step was for when one fails.
func (tab *Tab) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.Ctx, Timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tab.Shot("failed-" + what)
		tab.t.Fatalf("%s: %s: %v", tab.name, what, err)
	}
}

// Eval evaluates a JavaScript expression in the tab.
func Eval[T any](tab *Tab, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(tab.Ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// Text is what a person reads in the first element that matches the CSS
// selector, or "" while there is none.
func (tab *Tab) Text(css string) string {
	v, err := Eval[string](tab, fmt.Sprintf(
		`(function(){var e=document.querySelector(%q);return e?e.innerText:""})()`, css))
	if err != nil {
		return ""
	}
	return v
}

// WaitText waits until the element that the CSS selector names shows
// want, across reloads and navigations, and fails the test after within.
func (tab *Tab) WaitText(css, want string, within time.Duration) {
	tab.t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for {
		last = tab.Text(css)
		if strings.Contains(last, want) {
			return
		}
		if time.Now().After(deadline) {
			tab.Shot("failed-wait")
			tab.t.Fatalf("%s: waited %s for %q in %s; it shows %q", tab.name, within, want,
				css, clip(last, 600))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// WaitTrue waits until the JavaScript expression is true, across reloads,
// and fails the test with what after within.
func (tab *Tab) WaitTrue(what, expr string, within time.Duration) {
	tab.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, err := Eval[bool](tab, expr)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			tab.Shot("failed-wait")
			tab.t.Fatalf("%s: waited %s for %s (last error %v)", tab.name, within, what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Shot saves a PNG of the whole page as NN-name.png in the screenshot
// folder and returns its path; a failure to take it is only logged.
func (tab *Tab) Shot(name string) string {
	tab.t.Helper()
	tab.b.mu.Lock()
	tab.b.shotSeq++
	n := tab.b.shotSeq
	tab.b.mu.Unlock()

	ctx, cancel := context.WithTimeout(tab.Ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tab.t.Logf("screenshot %s of %s: %v", name, tab.name, err)
		return ""
	}
	file := filepath.Join(tab.b.shots, fmt.Sprintf("%02d-%s.png", n, safeName(name)))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		tab.t.Logf("save screenshot %s: %v", file, err)
		return ""
	}
	return file
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9-]+`)

func safeName(s string) string {
	return strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

// Viewport sets the width and height of the tab's page in CSS pixels.
func (tab *Tab) Viewport(width, height int64) {
	tab.t.Helper()
	tab.Do(fmt.Sprintf("set the viewport to %dx%d", width, height),
		chromedp.EmulateViewport(width, height))
}

// HorizontalOverflow returns how many CSS pixels the page is wider than
// the viewport: more than 0 means a person has to scroll sideways.
func (tab *Tab) HorizontalOverflow() int {
	tab.t.Helper()
	v, err := Eval[int](tab, `document.documentElement.scrollWidth - window.innerWidth`)
	if err != nil {
		tab.t.Fatalf("%s: measure the page width: %v", tab.name, err)
	}
	return v
}

// Popup runs trigger, which must make this tab open a window, and returns
// the new window as a watched tab.
func (tab *Tab) Popup(name string, trigger func()) *Tab {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.Ctx, Timeout)
	defer cancel()
	ch := chromedp.WaitNewTarget(ctx, func(info *target.Info) bool {
		return info.Type == "page"
	})
	trigger()

	var id target.ID
	select {
	case got, ok := <-ch:
		if !ok {
			tab.t.Fatalf("%s: the tab has no target to open %s from", tab.name, name)
		}
		id = got
	case <-ctx.Done():
		tab.Shot("failed-popup")
		tab.t.Fatalf("%s: no window %s opened within %s", tab.name, name, Timeout)
	}

	pctx, pcancel := chromedp.NewContext(tab.Ctx, chromedp.WithTargetID(id),
		chromedp.WithListener(tab.b.watch(name)))
	tab.t.Cleanup(pcancel)
	if err := chromedp.Do(pctx); err != nil {
		tab.t.Fatalf("attach to window %s: %v", name, err)
	}
	return &Tab{b: tab.b, t: tab.t, name: name, Ctx: pctx}
}

// WaitClosed waits until the tab's page has closed itself.
func (tab *Tab) WaitClosed(within time.Duration) {
	tab.t.Helper()
	gone, err := chromedp.Detached(tab.Ctx)
	if err != nil {
		tab.t.Fatalf("%s: %v", tab.name, err)
	}
	select {
	case <-gone:
	case <-time.After(within):
		tab.Shot("failed-close")
		tab.t.Fatalf("%s: the window did not close within %s", tab.name, within)
	}
}

// PressTabUntil presses Tab until the focused element matches the CSS
// selector, at most max times, and fails the test when it never does.
func (tab *Tab) PressTabUntil(css string, max int) int {
	tab.t.Helper()
	check := fmt.Sprintf(`(function(){var e=document.activeElement;`+
		`return !!e && e.matches(%q)})()`, css)
	for i := 1; i <= max; i++ {
		tab.Do("press Tab", chromedp.KeyEvent("\t"))
		ok, err := Eval[bool](tab, check)
		if err != nil {
			tab.t.Fatalf("%s: read the focused element: %v", tab.name, err)
		}
		if ok {
			return i
		}
	}
	tab.Shot("failed-keyboard")
	tab.t.Fatalf("%s: %d presses of Tab never reached %s", tab.name, max, css)
	return 0
}

// ErrNotAnswered is what Attr returns while no element matches.
var ErrNotAnswered = errors.New("no element matches")

// Attr reads an attribute of the first element that matches the CSS
// selector.
func (tab *Tab) Attr(css, name string) (string, error) {
	v, err := Eval[*string](tab, fmt.Sprintf(
		`(function(){var e=document.querySelector(%q);return e?e.getAttribute(%q):null})()`,
		css, name))
	if err != nil {
		return "", err
	}
	if v == nil {
		return "", ErrNotAnswered
	}
	return *v, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
