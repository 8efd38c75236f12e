// Package store keeps OneSync's own data: organisations, admin and staff
// accounts, consent requests, tenants, user links with their current
// presence and line state, and an audit trail. It is database/sql with
// embedded, ordered migrations; the same queries run on SQLite (the
// embedded default) and PostgreSQL (production).
package store

import (
	"errors"
	"time"
)

// Errors the store returns for outcomes that callers act on.
var (
	ErrNotFound    = errors.New("store: not found")
	ErrDuplicate   = errors.New("store: already exists")
	ErrTenantTaken = errors.New("store: tenant is bound to another organisation")
	ErrStateUsed   = errors.New("store: consent state already used or expired")
)

// Org is a customer organisation.
type Org struct {
	ID         string
	Name       string
	PBXOrg     string // the organisation's id at the PBX (OneCloud customer id)
	Stage      string // mirrored from the Onboarding workflow
	StageSince time.Time
	LastError  string
	CreatedAt  time.Time
	Profile    string // presence mapping profile as JSON; empty: default
}

// Admin is a customer admin account. PasswordHash is never logged.
type Admin struct {
	ID           string
	OrgID        string
	Name         string
	Email        string // stored lower case
	Phone        string
	PasswordHash string
	CreatedAt    time.Time
}

// Staff is a Setera staff account.
type Staff struct {
	ID           string
	Email        string
	Name         string
	PasswordHash string
	CreatedAt    time.Time
}

// ConsentRequest is a single-use consent state value bound to an
// organisation and a session.
type ConsentRequest struct {
	State     string
	OrgID     string
	SessionID string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until used
}

// Tenant is a Microsoft tenant bound to one organisation.
type Tenant struct {
	ID        string // Microsoft tenant id
	OrgID     string
	State     string // active, revoked, disconnected
	Reason    string
	DeltaLink string
	BoundAt   time.Time
	UpdatedAt time.Time
}

// Link ties a Teams user to a PBX extension, with the current presence and
// the line state last pushed for it.
type Link struct {
	TenantID     string
	UserID       string // Teams (Entra) user id
	OrgID        string
	Extension    string
	DisplayName  string
	Email        string
	MatchedBy    string // email, upn, phone, csv, manual
	Broken       bool
	BrokenReason string

	Availability string
	Activity     string
	LineState    string
	Seq          int64
	ChangedAt    time.Time // time of the last line state change
}

// Audit is one entry of who did what.
type Audit struct {
	ID     int64
	At     time.Time
	Actor  string // "admin:<id>", "staff:<id>", "system"
	OrgID  string
	Action string
	Detail string
}

// Session kinds: who a session belongs to.
const (
	SessionAdmin = "admin"
	SessionStaff = "staff"
)

// Tenant states.
const (
	TenantActive       = "active"
	TenantRevoked      = "revoked"
	TenantDisconnected = "disconnected"
)

// Session is a signed-in browser. ID is a hash of the cookie value, never
// the value itself, so a leaked table does not sign anyone in.
type Session struct {
	ID        string
	Kind      string // SessionAdmin or SessionStaff
	AccountID string
	CSRFToken string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// StateUpdate is one linked user's newest presence and, when Seq is greater
// than the stored one, the line state pushed for it.
type StateUpdate struct {
	UserID       string
	Availability string
	Activity     string
	LineState    string
	Seq          int64
	ChangedAt    time.Time
}
