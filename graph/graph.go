// Package graph holds what OneSync knows of Microsoft Graph and Entra ID
// without the Graph SDK: the data types, the API that activities use, the
// admin consent URL and callback, app-only tokens per tenant, the request
// budget and the one error classifier. The msgraph-sdk-go implementation of
// API lives in graph/client, so that packages which only need these types
// do not compile the SDK.
package graph

import (
	"context"

	"github.com/setera/onesync/presence"
)

// Permissions are the application roles OneSync needs in a tenant.
var Permissions = []string{"Presence.Read.All", "User.Read.All"}

// User is a directory user with the fields needed to match a PBX extension.
type User struct {
	ID             string   `json:"id"`
	DisplayName    string   `json:"displayName"`
	Mail           string   `json:"mail,omitempty"`
	UPN            string   `json:"userPrincipalName"`
	BusinessPhones []string `json:"businessPhones,omitempty"`
	MobilePhone    string   `json:"mobilePhone,omitempty"`
	AccountEnabled bool     `json:"accountEnabled"`
	UserType       string   `json:"userType"`
}

// Member reports whether u is an enabled member (not a guest, not disabled).
func (u User) Member() bool {
	return u.AccountEnabled && u.UserType != "Guest"
}

// UserDelta is what changed in a tenant's directory since a delta link.
type UserDelta struct {
	Changed   []User   `json:"changed"`
	Removed   []string `json:"removed"`
	DeltaLink string   `json:"deltaLink"`
}

// Consent is a verified admin consent: a token for the tenant was obtained
// and carried these claims.
type Consent struct {
	TenantID string   `json:"tenantId"`
	Roles    []string `json:"roles"`
}

// PresenceResult is the outcome of one presence read over many users. One
// failed batch does not lose the others: its ids are listed in Failed with
// the error that failed them.
type PresenceResult struct {
	Presences map[string]presence.Presence
	Failed    map[string]error
	Requests  int
}

// API is what OneSync asks of Graph for one tenant at a time.
type API interface {
	VerifyConsent(ctx context.Context, tenant string) (Consent, error)
	ListUsers(ctx context.Context, tenant string) ([]User, error)
	UserChanges(ctx context.Context, tenant, deltaLink string) (UserDelta, error)
	Presences(ctx context.Context, tenant string, ids []string) (PresenceResult, error)
	SetPresence(ctx context.Context, tenant, userID string, p presence.Presence) error
	ClearPresence(ctx context.Context, tenant, userID string) error
}
