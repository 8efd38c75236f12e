// Package browser holds OneSync's browser journey: a test that drives
// Debian's chromium, headless, through everything a customer admin and a
// Setera staff member do, against the same stack as `onesync dev` started
// in-process on free ports. It registers an organisation, approves it on
// the staff pages, connects Teams through the Graph simulator's consent
// page in a popup (first cancelled, then accepted with the keyboard), and
// watches a Teams call turn the extension's lamp busy on the OneCloud
// simulator's panel and free again.
//
// The package has no code of its own besides the tests; the browser setup
// they share with other browser tests is in package browsertest. Run it
// with
//
//	ONESYNC_SCREENSHOTS=/tmp/shots go test -count=1 ./e2e/browser/
//
// to keep a PNG of every step. Without chromium the test is skipped, and
// it fails instead under ONESYNC_REQUIRE_ALL=1.
package browser
