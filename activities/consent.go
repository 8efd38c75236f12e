package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/store"
	"github.com/setera/onesync/workflows"
)

// VerifyConsent confirms an admin consent for real: it obtains an app-only
// token for the tenant (graph.API.VerifyConsent checks the token's tid and
// roles) and then binds the tenant to the organisation. The tenant id that
// came back through the browser is never trusted before this.
//
// Failures a retry cannot fix are non-retryable application errors whose
// message an admin can read: ErrConsentRevoked, ErrPermissionMissing,
// ErrCredentials, ErrTenantMismatch and ErrTenantTaken.
func (a *Activities) VerifyConsent(ctx context.Context,
	in workflows.VerifyConsentInput) (workflows.VerifyConsentResult, error) {
	if in.OrgID == "" || in.TenantID == "" {
		return workflows.VerifyConsentResult{},
			invalid("verify consent: org id and tenant id are required")
	}

	c, err := a.Graph.VerifyConsent(ctx, in.TenantID)
	if err != nil {
		return workflows.VerifyConsentResult{}, a.consentError(in, err)
	}
	if !strings.EqualFold(c.TenantID, in.TenantID) {
		return workflows.VerifyConsentResult{}, temporal.NewNonRetryableApplicationError(
			"The Microsoft tenant that granted consent is not the one the sign-in named. "+
				"Sign in again with an administrator of your own tenant.",
			workflows.ErrTenantMismatch, nil)
	}

	if missing := missingRoles(c.Roles); len(missing) > 0 {
		return workflows.VerifyConsentResult{}, permissionMissing(missing)
	}

	err = a.Store.BindTenant(ctx, in.TenantID, in.OrgID, a.now())
	if errors.Is(err, store.ErrTenantTaken) {
		return workflows.VerifyConsentResult{}, temporal.NewNonRetryableApplicationError(
			"This Microsoft tenant is already connected to another organisation. "+
				"Contact Setera support if that is not expected.",
			workflows.ErrTenantTaken, nil)
	}
	if err != nil {
		return workflows.VerifyConsentResult{}, storeErr("bind tenant "+in.TenantID, err)
	}

	a.log().Info("consent verified", zap.String("tenant", in.TenantID),
		zap.String("org", in.OrgID), zap.Strings("roles", c.Roles))
	detail := fmt.Sprintf("tenant %s, roles %s", in.TenantID, strings.Join(c.Roles, " "))
	if err := a.audit(ctx, "system", in.OrgID, "consent-verified", detail); err != nil {
		return workflows.VerifyConsentResult{}, err
	}
	return workflows.VerifyConsentResult{TenantID: in.TenantID, Roles: c.Roles}, nil
}

// consentError turns a failed verification into an error for the workflow.
// Only classified, permanent failures are non-retryable; anything else is
// returned wrapped, to be retried by the activity's retry policy.
func (a *Activities) consentError(in workflows.VerifyConsentInput, err error) error {
	f := classifyGraph(err)
	log := a.log().With(zap.String("tenant", in.TenantID), zap.String("org", in.OrgID))
	switch f.Class {
	case graph.ClassRevoked:
		log.Warn("consent not found for tenant", zap.String("code", f.Code))
		return temporal.NewNonRetryableApplicationError(
			"Microsoft says OneSync has no consent in this tenant ("+codeOr(f, "no consent")+
				"). Press the button again and accept the permissions as a global administrator.",
			workflows.ErrConsentRevoked, err)
	case graph.ClassPermission:
		return permissionMissing(graph.Permissions)
	case graph.ClassCredentials:
		log.Error("OneSync's own credentials were refused: operator action needed",
			zap.String("code", f.Code))
		return temporal.NewNonRetryableApplicationError(
			"OneSync could not sign in to Microsoft because of a problem on Setera's side. "+
				"Setera has been alerted; please try again later.",
			workflows.ErrCredentials, err)
	case graph.ClassBadRequest:
		return temporal.NewNonRetryableApplicationError(
			"Microsoft refused the consent check ("+codeOr(f, "bad request")+
				"). Check the tenant and grant consent again.",
			workflows.ErrConsentRevoked, err)
	}
	return fmt.Errorf("verify consent of tenant %s: %w", in.TenantID, err)
}

func codeOr(f graph.Failure, fallback string) string {
	if f.Code != "" {
		return f.Code
	}
	return fallback
}

// missingRoles lists the permissions of graph.Permissions not in roles.
func missingRoles(roles []string) []string {
	var missing []string
	for _, p := range graph.Permissions {
		if !slices.Contains(roles, p) {
			missing = append(missing, p)
		}
	}
	return missing
}

// permissionMissing is the non-retryable error of a consent without every
// permission OneSync needs.
func permissionMissing(missing []string) error {
	return temporal.NewNonRetryableApplicationError(
		"Consent was given, but without every permission OneSync needs (missing: "+
			strings.Join(missing, ", ")+"). Grant consent again and accept all of them.",
		workflows.ErrPermissionMissing, nil)
}
