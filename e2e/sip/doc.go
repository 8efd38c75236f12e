// Package sip holds the end-to-end tests of OneSync's SIP deployment: the
// whole stack (devstack) with the SIP connector publishing to a real
// Kamailio presence server started from deploy/kamailio, an extension list
// uploaded through the portal, and a desk phone's SUBSCRIBE to
// Event: dialog watching the lamps follow Teams calls in the Graph
// simulator.
//
// The package has tests only. They skip with a reason where Kamailio is
// not installed, and fail instead under ONESYNC_REQUIRE_ALL=1. Everything
// they start listens on 127.0.0.1.
package sip
