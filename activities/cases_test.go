package activities

import (
	"testing"

	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/presence"
	"github.com/setera/onesync/workflows"
)

// C7 and C8 for every code GRAPH.md lists, and whether the failure comes
// with the whole read or with only some batches of it: a revocation ends
// the window as revoked, OneSync's own bad secret as an operator alarm,
// a 403 as a missing permission, each at once and never retried.
func TestCasesC7C8EveryTenantFailureEndsTheWindow(t *testing.T) {
	tokenErr := func(status int, code, aadsts string) error {
		return &graph.Error{Op: "token", Status: status, Code: code, AADSTS: aadsts}
	}
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"app deleted", tokenErr(401, "invalid_client", "AADSTS7000229"),
			workflows.ErrConsentRevoked},
		{"app not found", tokenErr(400, "unauthorized_client", "AADSTS700016"),
			workflows.ErrConsentRevoked},
		{"app disabled", tokenErr(400, "unauthorized_client", "AADSTS7000112"),
			workflows.ErrConsentRevoked},
		{"no consent", tokenErr(400, "invalid_grant", "AADSTS65001"), workflows.ErrConsentRevoked},
		{"tenant gone", tokenErr(400, "invalid_request", "AADSTS90002"),
			workflows.ErrConsentRevoked},
		{"bad secret", tokenErr(401, "invalid_client", "AADSTS7000215"), workflows.ErrCredentials},
		{"secret expired", tokenErr(401, "invalid_client", "AADSTS7000222"),
			workflows.ErrCredentials},
		{"403 without a body", &graph.Error{Op: "presences", Status: 403},
			workflows.ErrPermissionMissing},
		{"403 with a revocation code in the text", &graph.Error{Op: "presences", Status: 403,
			Message: "AADSTS700016"}, workflows.ErrPermissionMissing},
	}
	for _, tc := range cases {
		for _, partial := range []bool{false, true} {
			name := tc.name
			step := presenceStep{err: tc.err}
			if partial {
				name += " in one batch"
				step = presenceStep{
					ps:     map[string]presence.Presence{"u1": p("Busy", "InACall")},
					failed: map[string]error{"u2": tc.err, "u3": tc.err},
				}
			}
			t.Run(name, func(t *testing.T) {
				free := p("Available", "Available")
				f := newSyncFixture(t, allUsers(free, free, free), step, allUsers(free, free, free))

				_, err := f.run(t, nil)
				typ, nonRetryable := appErrorType(err)
				if typ != tc.want || !nonRetryable {
					t.Fatalf("error = %v (type %q, non-retryable %v), want non-retryable %s",
						err, typ, nonRetryable, tc.want)
				}
				if f.graph.calls != 2 {
					t.Errorf("graph was asked %d times, want 2: the window ends at the failure",
						f.graph.calls)
				}
			})
		}
	}
}
