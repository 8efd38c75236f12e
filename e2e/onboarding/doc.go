// Package onboarding holds only tests: they drive the customer's way in
// over HTTP, as a browser without JavaScript would, against the whole
// stack that devstacktest starts (embedded Temporal, the Graph and
// OneCloud simulators, the worker and the portal).
//
// They prove that an organisation registers, waits for Setera's approval,
// is approved by staff with a note, connects Microsoft Teams through the
// Graph simulator's admin consent page and reads "10 users have been
// activated" with the people OneSync could not match; that the Onboarding
// workflow's recorded history passes its stages in order, ran
// VerifyConsent and ImportUsers, started the tenant's PresenceSync and
// holds no password, token, secret or session value; that a consent
// cancelled at Microsoft leaves the organisation waiting for consent with
// a retry that then succeeds; and that registering the same email twice
// is answered "already registered" with one workflow (case C16).
//
// With ONESYNC_RECORD_HISTORIES=1 the journey also writes the finished
// Onboarding's and the ended PresenceSync's histories to
// workflows/testdata, where the workflows package replays them.
package onboarding
