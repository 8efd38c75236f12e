package graph

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// AdminConsentURL is where a customer's admin grants OneSync's application
// permissions: the v2.0 admin consent endpoint of the `organizations`
// authority with scope .default, returning to redirectURI with state.
//
// state must be an unguessable, single-use value that the caller stored
// with the organisation and the browser session that started the consent;
// see ParseConsentCallback for how it is checked on return.
func (c Config) AdminConsentURL(redirectURI, state string) (string, error) {
	c = c.WithDefaults()
	if strings.TrimSpace(c.ClientID) == "" {
		return "", errors.New("admin consent url: client id is empty")
	}
	if err := checkRedirectURI(redirectURI); err != nil {
		return "", fmt.Errorf("admin consent url: %w", err)
	}
	if len(state) < 16 {
		return "", errors.New("admin consent url: state must be at least 16 characters")
	}

	q := url.Values{}
	q.Set("client_id", c.ClientID)
	q.Set("scope", GraphScope)
	q.Set("redirect_uri", redirectURI)
	q.Set("state", state)
	return c.Authority + "/organizations/v2.0/adminconsent?" + q.Encode(), nil
}

func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("redirect uri: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("redirect uri %q is not an http or https URL", raw)
	}
	if u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("redirect uri %q needs a host and no fragment", raw)
	}
	return nil
}

// ConsentFailureKind says why an admin consent did not happen.
type ConsentFailureKind string

// The kinds of consent failure.
const (
	// ConsentCancelled means the admin pressed Cancel (AADSTS65004): the
	// page offers to try again.
	ConsentCancelled ConsentFailureKind = "cancelled"
	// ConsentDenied means the signed-in user may not grant consent
	// (not an admin, or the tenant forbids it).
	ConsentDenied ConsentFailureKind = "denied"
	// ConsentOther is any other failure, including a malformed callback.
	ConsentOther ConsentFailureKind = "other"
)

// ConsentError is a failed admin consent as the callback reported it.
type ConsentError struct {
	Kind ConsentFailureKind
	// Err is the callback's error parameter, for example access_denied.
	Err string
	// Description is the callback's error_description.
	Description string
	// Code is the AADSTS code in the description, for example AADSTS65004.
	Code string
	// State is the callback's state, so the caller can find the session.
	State string
	// Tenant is the callback's tenant when one was given. It is not to be
	// trusted.
	Tenant string
}

// Error describes the failure.
func (e *ConsentError) Error() string {
	if e == nil {
		return "<nil consent error>"
	}
	msg := fmt.Sprintf("admin consent %s", e.Kind)
	if e.Err != "" {
		msg += ": " + e.Err
	}
	if e.Code != "" {
		msg += " (" + e.Code + ")"
	}
	return msg
}

// ConsentCallback is what a successful-looking consent callback claims: the
// tenant that consented, the state sent with the request and the granted
// scope. It is a claim, not a fact, until the caller verified it.
type ConsentCallback struct {
	Tenant string
	State  string
	Scope  string
}

// ParseConsentCallback reads the query of the admin consent redirect. It
// returns the claimed grant, or a *ConsentError saying whether the admin
// cancelled, was denied, or something else went wrong. An `error` parameter
// always wins over admin_consent=True, and admin_consent must be exactly
// True (as Entra sends it) for a grant.
//
// The parser checks form only. The caller must, in this order:
//
//  1. Look up State in its own store: it must be a state it issued, not yet
//     used, for the organisation and the browser session of this request.
//     Mark it used at once (single use), whether the rest succeeds or not.
//     A callback whose state is unknown, used, or bound to another session
//     is refused; this holds for failures too, so that a forged cancel
//     cannot disturb someone else's onboarding.
//  2. Treat Tenant as a claim: anyone can edit it in the address bar. Only
//     after VerifyConsent obtained an app-only token for Tenant whose tid
//     claim equals Tenant and whose roles hold Permissions, store the
//     tenant as the organisation's.
func ParseConsentCallback(q url.Values) (ConsentCallback, error) {
	state := q.Get("state")
	tenant := q.Get("tenant")

	// Entra sends each parameter once. A repeated one means the address
	// was edited; which copy to believe cannot be known, so none is, and a
	// repeated state is not even handed back for the caller to look up.
	for _, k := range callbackParams {
		if len(q[k]) > 1 {
			if k == "state" {
				state = ""
			}
			return ConsentCallback{}, &ConsentError{Kind: ConsentOther, Err: "invalid_callback",
				Description: k + " is given more than once", State: state, Tenant: tenant}
		}
	}

	// An error parameter wins even when it is empty or comes with
	// admin_consent=True.
	if q.Has("error") {
		e := q.Get("error")
		if e == "" {
			e = "invalid_callback"
		}
		desc := q.Get("error_description")
		return ConsentCallback{}, &ConsentError{
			Kind:        consentFailureKind(e, desc),
			Err:         e,
			Description: desc,
			Code:        AADSTSCode(desc),
			State:       state,
			Tenant:      tenant,
		}
	}

	other := func(why string) error {
		return &ConsentError{Kind: ConsentOther, Err: "invalid_callback", Description: why,
			State: state, Tenant: tenant}
	}
	if q.Get("admin_consent") != "True" {
		return ConsentCallback{}, other("admin_consent is not True")
	}
	if state == "" {
		return ConsentCallback{}, other("state is missing")
	}
	if !ValidTenantID(tenant) {
		return ConsentCallback{}, other("tenant is missing or not a tenant id")
	}
	return ConsentCallback{Tenant: strings.ToLower(tenant), State: state,
		Scope: q.Get("scope")}, nil
}

// callbackParams are the parameters of a consent callback that decide its
// outcome.
var callbackParams = []string{"error", "error_description", "admin_consent", "tenant", "state"}

func consentFailureKind(errParam, desc string) ConsentFailureKind {
	switch code := AADSTSCode(desc); {
	case code == "AADSTS65004":
		return ConsentCancelled
	case errParam == "access_denied", errParam == "permission_denied",
		errParam == "consent_required", code == "AADSTS90094", code == "AADSTS90008":
		return ConsentDenied
	}
	return ConsentOther
}
