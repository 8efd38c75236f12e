// Package workflows holds OneSync's Temporal workflows, Onboarding and
// PresenceSync, with their IDs, signal and query names and the payload
// types that cross the workflow boundary. It is deterministic code only:
// it never performs I/O, reads the clock or imports an activity
// implementation. Activities are called by the name constants below.
//
// No password, token or secret ever enters a type of this file: they are
// recorded in workflow history for as long as it is kept.
package workflows

import (
	"strings"
	"time"

	"github.com/setera/onesync/presence"
)

// TaskQueue is the task queue of every OneSync workflow and activity.
const TaskQueue = "onesync"

// Search attributes, registered by `onesync dev` and expected on a cluster.
const (
	SearchAttrStage  = "OneSyncStage"
	SearchAttrOrg    = "OneSyncOrg"
	SearchAttrTenant = "OneSyncTenant"
)

// Workflow type names.
const (
	OnboardingWorkflow   = "Onboarding"
	PresenceSyncWorkflow = "PresenceSync"
)

const (
	onboardingPrefix   = "onboarding:"
	presenceSyncPrefix = "presence-sync:"
)

// OnboardingID is the workflow ID of an organisation's onboarding.
func OnboardingID(orgID string) string { return onboardingPrefix + orgID }

// ParseOnboardingID returns the organisation ID of an onboarding workflow ID.
func ParseOnboardingID(id string) (orgID string, ok bool) {
	return strings.CutPrefix(id, onboardingPrefix)
}

// PresenceSyncID is the workflow ID of a tenant's presence sync.
func PresenceSyncID(tenantID string) string { return presenceSyncPrefix + tenantID }

// ParsePresenceSyncID returns the tenant ID of a presence sync workflow ID.
func ParsePresenceSyncID(id string) (tenantID string, ok bool) {
	return strings.CutPrefix(id, presenceSyncPrefix)
}

// Stage is where an organisation's onboarding stands.
type Stage string

// The onboarding stages, in the order an organisation passes them.
const (
	StageAwaitingApproval Stage = "awaiting-approval"
	StageRejected         Stage = "rejected"
	StageExpired          Stage = "expired"
	StageAwaitingConsent  Stage = "awaiting-consent"
	StageImporting        Stage = "importing"
	StageSyncing          Stage = "syncing"
)

// Onboarding signals and query.
const (
	SignalApprove        = "approve"
	SignalReject         = "reject"
	SignalConsentGranted = "consent-granted"
	SignalConsentFailed  = "consent-failed"
	QueryStatus          = "status"
)

// PresenceSync signals; its query is QueryStatus too.
const (
	SignalPause         = "pause"
	SignalResume        = "resume"
	SignalResyncUsers   = "resync-users"
	SignalDisconnect    = "disconnect"
	SignalConfigChanged = "config-changed"
)

// Activity names. Workflows call activities by these names only.
const (
	ActivityRecordStage   = "RecordStage"
	ActivityRemindStaff   = "RemindStaff"
	ActivityVerifyConsent = "VerifyConsent"
	ActivityImportUsers   = "ImportUsers"
	ActivitySyncPresence  = "SyncPresence"
	ActivityRefreshUsers  = "RefreshUsers"
	ActivityReleaseLines  = "ReleaseLines"
	ActivityMarkTenant    = "MarkTenant"
)

// Application error types that cross the workflow boundary. They are
// non-retryable: retrying cannot help.
const (
	ErrConsentRevoked    = "ConsentRevoked"     // the customer removed or never granted the app
	ErrPermissionMissing = "PermissionMissing"  // Graph answered 403
	ErrCredentials       = "OneSyncCredentials" // OneSync's own client secret is wrong: operator alarm
	ErrTenantMismatch    = "TenantMismatch"     // the token's tid is not the tenant asked for
	ErrTenantTaken       = "TenantTaken"        // the tenant is bound to another organisation
)

// OnboardingInput starts an organisation's onboarding.
type OnboardingInput struct {
	OrgID        string    `json:"orgId"`
	OrgName      string    `json:"orgName"`
	RegisteredAt time.Time `json:"registeredAt"`

	// Reconnect starts the onboarding again after the tenant was revoked or
	// disconnected: Setera approved the organisation the first time, so the
	// workflow starts in awaiting-consent with ApprovedBy ApprovedEarlier.
	Reconnect bool `json:"reconnect,omitempty"`
}

// ApprovedEarlier is OnboardingStatus.ApprovedBy of a reconnect: the
// approval that counts was given in the organisation's first onboarding.
const ApprovedEarlier = "earlier approval"

// ApproveSignal and RejectSignal carry the staff member and a note.
type ApproveSignal struct {
	Staff string `json:"staff"`
	Note  string `json:"note,omitempty"`
}

// RejectSignal rejects a pending registration.
type RejectSignal struct {
	Staff string `json:"staff"`
	Note  string `json:"note,omitempty"`
}

// ConsentGrantedSignal is sent by the consent callback once its state was
// verified. The tenant is not trusted until VerifyConsent confirms it.
type ConsentGrantedSignal struct {
	TenantID string `json:"tenantId"`
	By       string `json:"by"` // the admin's account id
}

// ConsentFailedSignal is sent when the consent callback carried an error.
type ConsentFailedSignal struct {
	Kind        string `json:"kind"` // cancelled, denied, other
	Code        string `json:"code,omitempty"`
	Description string `json:"description,omitempty"`
}

// OnboardingStatus answers the Onboarding status query.
type OnboardingStatus struct {
	OrgID        string        `json:"orgId"`
	Stage        Stage         `json:"stage"`
	StageSince   time.Time     `json:"stageSince"`
	RegisteredAt time.Time     `json:"registeredAt"`
	ApprovedBy   string        `json:"approvedBy,omitempty"`
	DecisionNote string        `json:"decisionNote,omitempty"`
	TenantID     string        `json:"tenantId,omitempty"`
	LastError    string        `json:"lastError,omitempty"`
	Reminded     bool          `json:"reminded,omitempty"`
	Import       *ImportResult `json:"import,omitempty"`

	// RejectedBy names the staff member who rejected the registration.
	RejectedBy string `json:"rejectedBy,omitempty"`
	// LastErrorCode classifies LastError for pages that react to it: one of
	// the application error types above or a LastError* code below.
	LastErrorCode string `json:"lastErrorCode,omitempty"`
}

// Codes of OnboardingStatus.LastErrorCode that are not application error
// types: what went wrong at the consent callback or after verification.
const (
	LastErrorConsentCancelled = "consent-cancelled" // the admin pressed Cancel at Microsoft
	LastErrorConsentDenied    = "consent-denied"    // Microsoft refused the consent
	LastErrorConsentOther     = "consent-other"     // any other error at the callback
	LastErrorVerifyFailed     = "verify-failed"     // verification failed for a passing reason
	LastErrorImportFailed     = "import-failed"     // the users could not be imported
	LastErrorSyncStartFailed  = "sync-start-failed" // the presence sync could not be started
)

// RecordStageInput mirrors the stage into the store for pages and lists.
type RecordStageInput struct {
	OrgID     string    `json:"orgId"`
	Stage     Stage     `json:"stage"`
	Actor     string    `json:"actor,omitempty"`
	Note      string    `json:"note,omitempty"`
	LastError string    `json:"lastError,omitempty"`
	At        time.Time `json:"at"`
}

// RemindStaffInput asks staff to decide on a pending registration.
type RemindStaffInput struct {
	OrgID   string        `json:"orgId"`
	OrgName string        `json:"orgName"`
	Waiting time.Duration `json:"waiting"`
}

// VerifyConsentInput asks for an app-only token for the tenant and checks
// its tid and roles, then binds the tenant to the organisation.
type VerifyConsentInput struct {
	OrgID    string `json:"orgId"`
	TenantID string `json:"tenantId"`
}

// VerifyConsentResult is a verified consent.
type VerifyConsentResult struct {
	TenantID string   `json:"tenantId"`
	Roles    []string `json:"roles"`
}

// ImportUsersInput imports a tenant's users and matches them to extensions.
type ImportUsersInput struct {
	OrgID    string `json:"orgId"`
	TenantID string `json:"tenantId"`
}

// ImportResult is what an import found. The lists name people so that the
// admin can fix them; they hold display names and addresses, never secrets.
type ImportResult struct {
	Activated       int      `json:"activated"`
	TeamsWithoutExt int      `json:"teamsWithoutExtension"`
	ExtWithoutTeams int      `json:"extensionsWithoutTeams"`
	Ambiguous       int      `json:"ambiguous"`
	UnmatchedTeams  []string `json:"unmatchedTeams,omitempty"`
	UnmatchedExts   []string `json:"unmatchedExtensions,omitempty"`
	AmbiguousUsers  []string `json:"ambiguousUsers,omitempty"`
}

// PresenceSyncInput starts or continues a tenant's presence sync. A run
// that continues as new carries its state and every signal not yet handled.
type PresenceSyncInput struct {
	OrgID    string `json:"orgId"`
	TenantID string `json:"tenantId"`

	Paused         bool            `json:"paused,omitempty"`
	Interval       time.Duration   `json:"interval,omitempty"` // 0: the worker's default
	Window         time.Duration   `json:"window,omitempty"`   // 0: the worker's default
	LastUserSync   time.Time       `json:"lastUserSync,omitempty"`
	Totals         SyncTotals      `json:"totals"`
	PendingSignals []PendingSignal `json:"pendingSignals,omitempty"`

	// Run is the ordinal of the run this input starts, counting
	// continue-as-new; zero at the first start means 1.
	Run int `json:"run,omitempty"`
	// Linked and LastWindow carry the last window's figures so that the
	// status query of a new run shows them before its first window ends.
	Linked     int       `json:"linked,omitempty"`
	LastWindow time.Time `json:"lastWindow,omitempty"`
}

// PendingSignal is a PresenceSync signal carried into the next run.
type PendingSignal struct {
	Name   string    `json:"name"`
	SentAt time.Time `json:"sentAt,omitempty"`
}

// SyncSignal is the payload of every PresenceSync signal. SentAt, the
// sender's clock when it sent the signal, orders signals that reach the
// workflow together: Temporal hands over every signal of a workflow task at
// once, one channel per name, and the order across names is lost. A signal
// without a payload, or without SentAt, counts as sent when it arrived.
type SyncSignal struct {
	SentAt time.Time `json:"sentAt,omitempty"`
	By     string    `json:"by,omitempty"`
}

// SyncTotals add up the windows of a tenant's sync across runs.
type SyncTotals struct {
	Windows  int64 `json:"windows"`
	Polls    int64 `json:"polls"`
	Pushes   int64 `json:"pushes"`
	Requests int64 `json:"requests"`
}

// SyncPresenceInput runs one bounded polling window. The last pushed state
// of each extension lives in the store (and in the activity's heartbeat),
// not in the input, so that history stays small for any tenant size.
type SyncPresenceInput struct {
	OrgID    string        `json:"orgId"`
	TenantID string        `json:"tenantId"`
	Interval time.Duration `json:"interval"`
	Window   time.Duration `json:"window"`
}

// SyncPresenceResult summarises one window.
type SyncPresenceResult struct {
	Polls       int       `json:"polls"`
	Pushes      int       `json:"pushes"`
	Requests    int       `json:"requests"`
	Linked      int       `json:"linked"`
	Broken      int       `json:"broken"`
	Throttled   bool      `json:"throttled,omitempty"`
	ThrottledAt time.Time `json:"throttledAt,omitempty"`
	LastError   string    `json:"lastError,omitempty"`
}

// RefreshUsersInput re-reads the tenant's users through the users delta.
type RefreshUsersInput struct {
	OrgID    string `json:"orgId"`
	TenantID string `json:"tenantId"`
}

// RefreshUsersResult says what the users delta changed.
type RefreshUsersResult struct {
	Linked   int `json:"linked"`
	Unlinked int `json:"unlinked"`
}

// ReleaseLinesInput sets every extension of the tenant back to available.
type ReleaseLinesInput struct {
	OrgID    string `json:"orgId"`
	TenantID string `json:"tenantId"`
	Reason   string `json:"reason"`
}

// ReleaseLinesResult counts the extensions set back to available.
type ReleaseLinesResult struct {
	Released int `json:"released"`
}

// TenantState is a tenant's connection state in the store.
type TenantState string

// The tenant states.
const (
	TenantActive       TenantState = "active"
	TenantRevoked      TenantState = "revoked"
	TenantDisconnected TenantState = "disconnected"
)

// MarkTenantInput records a tenant's state.
type MarkTenantInput struct {
	OrgID    string      `json:"orgId"`
	TenantID string      `json:"tenantId"`
	State    TenantState `json:"state"`
	Reason   string      `json:"reason,omitempty"`
}

// SyncState is how a tenant's sync stands, for the status query.
type SyncState string

// The sync states.
const (
	SyncRunning      SyncState = "running"
	SyncPaused       SyncState = "paused"
	SyncThrottled    SyncState = "throttled"
	SyncRevoked      SyncState = "revoked"
	SyncDisconnected SyncState = "disconnected"
	SyncFailing      SyncState = "failing"
)

// PresenceSyncStatus answers the PresenceSync status query.
type PresenceSyncStatus struct {
	TenantID   string     `json:"tenantId"`
	State      SyncState  `json:"state"`
	Since      time.Time  `json:"since"`
	LastWindow time.Time  `json:"lastWindow,omitempty"`
	LastError  string     `json:"lastError,omitempty"`
	Linked     int        `json:"linked"`
	Totals     SyncTotals `json:"totals"`
	Run        int        `json:"run"` // runs since the sync started (continue-as-new count)
}

// LineRecord is an extension's last pushed line state.
type LineRecord struct {
	State presence.LineState `json:"state"`
	Seq   int64              `json:"seq"`
}
