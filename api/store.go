package api

import (
	"context"
	"time"

	"github.com/setera/onesync/store"
)

// Store is the part of the store the HTTP side uses. *store.DB satisfies
// it; the tests use the real store on SQLite in a temporary folder.
type Store interface {
	Ping(ctx context.Context) error

	CreateOrgWithAdmin(ctx context.Context, o store.Org, a store.Admin) error
	Org(ctx context.Context, id string) (store.Org, error)
	Orgs(ctx context.Context) ([]store.Org, error)
	AdminByEmail(ctx context.Context, email string) (store.Admin, error)
	Admin(ctx context.Context, id string) (store.Admin, error)
	StaffByEmail(ctx context.Context, email string) (store.Staff, error)
	Staff(ctx context.Context, id string) (store.Staff, error)

	CreateSession(ctx context.Context, s store.Session) error
	Session(ctx context.Context, id string, now time.Time) (store.Session, error)
	DeleteSession(ctx context.Context, id string) error

	CreateConsentRequest(ctx context.Context, r store.ConsentRequest) error
	UseConsentRequest(ctx context.Context, state, orgID, sessionID string,
		now time.Time) (store.ConsentRequest, error)

	TenantByOrg(ctx context.Context, orgID string) (store.Tenant, error)
	LinksByOrg(ctx context.Context, orgID string) ([]store.Link, error)
	AddAudit(ctx context.Context, a store.Audit) error
	AuditByOrg(ctx context.Context, orgID string, limit int) ([]store.Audit, error)
}
