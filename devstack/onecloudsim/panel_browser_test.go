package onecloudsim_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/setera/onesync/e2e/browser/browsertest"
	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/presence"
)

// TestPanelLampTurnsBusyInTheBrowser loads the panel in a real browser and
// checks that a push turns the lamp busy without reloading the page.
func TestPanelLampTurnsBusyInTheBrowser(t *testing.T) {
	browsertest.Require(t)
	sim := start(t)
	conn, err := pbx.NewREST(pbx.RESTConfig{BaseURL: sim.URL(), APIKey: key,
		SigningSecret: secret})
	if err != nil {
		t.Fatal(err)
	}

	b := browsertest.Start(t)
	b.Expect(browsertest.Expected{URL: browsertest.URLIs(sim.URL() + "/favicon.ico"), Status: 404,
		Why: "the simulator's panel has no icon"})
	panel := b.NewTab(t, "panel")
	panel.Do("open the panel", chromedp.Navigate(sim.URL()+"/panel/demo"))
	panel.Do("see lamp 1001 and the live stream",
		chromedp.WaitVisible(chromedp.CSS(`li[data-extension="1001"][data-state="unknown"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#live[data-live="true"]`)),
	)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = conn.Publish(ctx, pbx.Update{Org: "demo", Extension: "1001", State: presence.Busy,
		Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	busy := chromedp.CSS(`li[data-extension="1001"][data-state="busy"]`)
	panel.Do("see lamp 1001 turn busy", chromedp.WaitVisible(busy))
	if label := panel.Text(`li[data-extension="1001"] .state`); label != "Busy" {
		t.Errorf("lamp label %q, want Busy", label)
	}
	changed, err := panel.Attr(`li[data-extension="1001"][data-state="busy"]`, "data-changed-at")
	if err != nil || changed == "" {
		t.Errorf("lamp has no change time (%v)", err)
	}
	panel.Shot("onecloudsim-panel-busy")
	b.Check(t)
}
