// Package activities holds every OneSync activity: the code that touches
// the world (Microsoft Graph, the PBX and the store) on behalf of the
// deterministic workflows in package workflows. The worker registers one
// *Activities value; its exported methods are named exactly as the
// activity name constants of workflows/contract.go.
//
// Activities never return a secret in a result or an error: both are
// recorded in workflow history. Errors that retrying cannot fix are
// returned as non-retryable application errors with the type constants of
// the workflows package, so that workflows can branch on them.
package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/store"
	"github.com/setera/onesync/workflows"
)

// Store is the part of the store that activities use. *store.DB satisfies
// it; tests may use an in-memory fake.
type Store interface {
	BindTenant(ctx context.Context, tenantID, orgID string, at time.Time) error
	Tenant(ctx context.Context, id string) (store.Tenant, error)
	SetTenantState(ctx context.Context, tenantID, state, reason string, at time.Time) error
	SetDeltaLink(ctx context.Context, tenantID, link string) error
	Org(ctx context.Context, id string) (store.Org, error)
	SetOrgStage(ctx context.Context, orgID, stage, lastError string, at time.Time) error
	ReplaceLinks(ctx context.Context, tenantID string, links []store.Link) error
	UpsertLink(ctx context.Context, l store.Link) error
	DeleteLink(ctx context.Context, tenantID, userID string) error
	Links(ctx context.Context, tenantID string) ([]store.Link, error)
	MarkLinkBroken(ctx context.Context, tenantID, userID, reason string) error
	SaveStates(ctx context.Context, tenantID string, updates []store.StateUpdate) error
	AddAudit(ctx context.Context, a store.Audit) error
	Extensions(ctx context.Context, orgID string) ([]pbx.Extension, error)
}

// Defaults used when a field of Activities or of an activity input is zero.
const (
	DefaultRegion          = "FI"
	DefaultSyncInterval    = 2 * time.Second
	DefaultSyncWindow      = 10 * time.Minute
	DefaultPushConcurrency = 8
)

// errInvalidInput is the application error type of an activity input that
// can never succeed; it is not retried.
const errInvalidInput = "InvalidInput"

// errNotFound is the application error type of a missing organisation or
// tenant; retrying cannot make it appear.
const errNotFound = "NotFound"

// Activities holds the dependencies of every OneSync activity. Register a
// *Activities with the worker; all exported methods are activities.
//
// Store is a named field rather than an embedded interface on purpose: an
// embedded interface would promote the store's methods onto Activities and
// the worker would register them as activities too.
type Activities struct {
	// Store keeps organisations, tenants, links and the audit trail.
	Store Store
	// Graph reads users and presences of a tenant.
	Graph graph.API
	// PBX publishes line states, and lists extensions unless Directory is set.
	PBX pbx.Connector
	// Directory optionally overrides the PBX's directory, for example with
	// the CSV list an admin uploaded when the PBX is reached over SIP. It
	// is keyed by OneSync's organisation id, where the PBX's own directory
	// is keyed by the organisation's id at the PBX.
	Directory pbx.Directory
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Logger is the root logger; nil means no logging.
	Logger *zap.Logger
	// DefaultRegion is the region (ISO 3166 alpha-2) that national phone
	// numbers are read in; empty means DefaultRegion ("FI").
	DefaultRegion string
	// Metrics records pushes, Graph outcomes and push latency; nil is fine.
	Metrics *Metrics
	// PushConcurrency bounds how many PBX pushes one tenant's poll makes at
	// once; 0 means DefaultPushConcurrency.
	PushConcurrency int
}

func (a *Activities) now() time.Time {
	if a.Clock != nil {
		return a.Clock()
	}
	return time.Now()
}

func (a *Activities) log() *zap.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return zap.NewNop()
}

func (a *Activities) region() string {
	if a.DefaultRegion != "" {
		return a.DefaultRegion
	}
	return DefaultRegion
}

// extensions lists the organisation's extensions from the directory in use.
func (a *Activities) extensions(ctx context.Context, org store.Org) ([]pbx.Extension, error) {
	if a.Directory != nil {
		return a.Directory.Extensions(ctx, org.ID)
	}
	return a.PBX.Extensions(ctx, org.PBXOrg)
}

func (a *Activities) pushConcurrency() int {
	if a.PushConcurrency > 0 {
		return a.PushConcurrency
	}
	return DefaultPushConcurrency
}

// classifyGraph is the seam to graph's one error classifier, so that tests
// can classify their own fake errors if they need to.
var classifyGraph = graph.Classify

// invalid returns a non-retryable error for an input that cannot succeed.
func invalid(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...),
		errInvalidInput, nil)
}

// storeErr wraps a store error with context; a missing row is not retried.
func storeErr(what string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return temporal.NewNonRetryableApplicationError(what+": not found", errNotFound, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// tenantOfOrg loads a tenant and checks that it is bound to orgID, so that
// an activity never acts on another organisation's tenant.
func (a *Activities) tenantOfOrg(ctx context.Context,
	tenantID, orgID string) (store.Tenant, error) {
	t, err := a.Store.Tenant(ctx, tenantID)
	if err != nil {
		return store.Tenant{}, storeErr("load tenant "+tenantID, err)
	}
	if t.OrgID != orgID {
		return store.Tenant{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("tenant %s is bound to another organisation", tenantID),
			workflows.ErrTenantTaken, nil)
	}
	return t, nil
}

// tenantAndOrg checks an activity's organisation and tenant ids, loads the
// tenant (which must be bound to the organisation) and the organisation.
// op names the activity in the error for missing ids.
func (a *Activities) tenantAndOrg(ctx context.Context, op, tenantID, orgID string) (
	store.Tenant, store.Org, error) {
	if orgID == "" || tenantID == "" {
		return store.Tenant{}, store.Org{}, invalid("%s: org id and tenant id are required", op)
	}
	t, err := a.tenantOfOrg(ctx, tenantID, orgID)
	if err != nil {
		return store.Tenant{}, store.Org{}, err
	}
	org, err := a.Store.Org(ctx, orgID)
	if err != nil {
		return store.Tenant{}, store.Org{}, storeErr("load org "+orgID, err)
	}
	return t, org, nil
}

// audit adds an audit entry. A failed audit write fails the activity, so
// that it is retried rather than lost.
func (a *Activities) audit(ctx context.Context, actor, orgID, action, detail string) error {
	if actor == "" {
		actor = "system"
	}
	err := a.Store.AddAudit(ctx, store.Audit{
		At: a.now(), Actor: actor, OrgID: orgID, Action: action, Detail: detail,
	})
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// RecordStage mirrors an onboarding stage into the store, where the portal
// and staff pages list organisations by stage, and audits the change.
func (a *Activities) RecordStage(ctx context.Context, in workflows.RecordStageInput) error {
	if in.OrgID == "" || in.Stage == "" {
		return invalid("record stage: org id and stage are required")
	}
	at := in.At
	if at.IsZero() {
		at = a.now()
	}

	err := a.Store.SetOrgStage(ctx, in.OrgID, string(in.Stage), in.LastError, at)
	if err != nil {
		return storeErr("set stage of org "+in.OrgID, err)
	}

	detail := in.Note
	if in.LastError != "" {
		detail = joinNonEmpty(detail, "error: "+in.LastError)
	}
	return a.audit(ctx, in.Actor, in.OrgID, "stage:"+string(in.Stage), detail)
}

// RemindStaff tells staff that a registration still waits for a decision.
//
// It is a placeholder for a real notification channel (mail, chat): for now
// it writes a warning log line with the organisation id and the waiting
// time, and an audit entry that the staff pages show. Nobody is paged.
func (a *Activities) RemindStaff(ctx context.Context, in workflows.RemindStaffInput) error {
	if in.OrgID == "" {
		return invalid("remind staff: org id is required")
	}

	a.log().Warn("registration waits for a staff decision",
		zap.String("org", in.OrgID), zap.Duration("waiting", in.Waiting))

	detail := fmt.Sprintf("%s has waited %s for approval", in.OrgName,
		in.Waiting.Round(time.Minute))
	return a.audit(ctx, "system", in.OrgID, "remind-staff", detail)
}

// MarkTenant records a tenant's connection state (active, revoked,
// disconnected) for the pages, and audits it.
func (a *Activities) MarkTenant(ctx context.Context, in workflows.MarkTenantInput) error {
	switch in.State {
	case workflows.TenantActive, workflows.TenantRevoked, workflows.TenantDisconnected:
	default:
		return invalid("mark tenant: unknown state %q", in.State)
	}
	if in.TenantID == "" || in.OrgID == "" {
		return invalid("mark tenant: org id and tenant id are required")
	}
	if _, err := a.tenantOfOrg(ctx, in.TenantID, in.OrgID); err != nil {
		return err
	}

	err := a.Store.SetTenantState(ctx, in.TenantID, string(in.State), in.Reason, a.now())
	if err != nil {
		return storeErr("set state of tenant "+in.TenantID, err)
	}

	a.log().Info("tenant state recorded", zap.String("tenant", in.TenantID),
		zap.String("org", in.OrgID), zap.String("state", string(in.State)))
	detail := joinNonEmpty("tenant "+in.TenantID, in.Reason)
	return a.audit(ctx, "system", in.OrgID, "tenant:"+string(in.State), detail)
}

func joinNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
