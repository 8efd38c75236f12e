package sip

import (
	"testing"

	"github.com/setera/onesync/pbx/sip/siptest"
)

// testDomain is the SIP domain of the presentities in the tests. Nothing
// resolves it: every request is sent to the server's loopback address.
// The Kamailio server and watchers the tests use come from siptest.
const testDomain = siptest.DefaultDomain

// shownDialogState is the dialog state a phone lamp shows for a dialog-info
// body, "" when it holds no dialog; t fails when it is not dialog-info.
func shownDialogState(t *testing.T, body string) string {
	t.Helper()
	s, err := siptest.DialogState(body)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
