package onecloudsim_test

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/setera/onesync/internal/testutil"
	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/presence"
)

// chromium finds Debian's chromium, or returns "".
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestPanelLampTurnsBusyInTheBrowser loads the panel in a real browser and
// checks that a push turns the lamp busy without reloading the page.
func TestPanelLampTurnsBusyInTheBrowser(t *testing.T) {
	path := chromium()
	testutil.RequireOrSkip(t, path != "", "chromium is not installed (apt-get install chromium)")

	sim := start(t)
	conn, err := pbx.NewREST(pbx.RESTConfig{BaseURL: sim.URL(), APIKey: key,
		SigningSecret: secret})
	if err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path),
		chromedp.NoSandbox)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browser, chromedp.Navigate(sim.URL()+"/panel/demo")); err != nil {
		t.Fatalf("open panel: %v", err)
	}

	ctx, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`li[data-extension="1001"][data-state="unknown"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#live[data-live="true"]`)),
	)
	if err != nil {
		t.Fatalf("panel did not show lamp 1001 and connect: %v", err)
	}

	err = conn.Publish(ctx, pbx.Update{Org: "demo", Extension: "1001", State: presence.Busy,
		Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	busy := chromedp.CSS(`li[data-extension="1001"][data-state="busy"]`)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(busy)); err != nil {
		t.Fatalf("lamp 1001 did not turn busy: %v", err)
	}
	label, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(
		`li[data-extension="1001"] .state`)))
	if err != nil || label != "Busy" {
		t.Errorf("lamp label %q (%v), want Busy", label, err)
	}
	changed, err := chromedp.Run(ctx, chromedp.AttributeValue(busy, "data-changed-at"))
	if err != nil || changed.Value == "" {
		t.Errorf("lamp has no change time (%v)", err)
	}
}
