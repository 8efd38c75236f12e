package api

import (
	"github.com/setera/onesync/workflows"
)

// step is one box of the onboarding stepper.
type step struct {
	Label string
	// State is done, current, failed or todo; the template styles each and
	// says it in words for screen readers.
	State string
}

// journey is the stepper and what the admin reads under it: what happens
// next and who must act.
type journey struct {
	Steps []step
	// Heading says where the organisation stands, in one line.
	Heading string
	// Next says what happens next.
	Next string
	// Who says who must act now: "You", "Setera" or "OneSync".
	Who string
	// ActionURL and ActionLabel are the admin's next click, when they have
	// one.
	ActionURL, ActionLabel string
	// Problem explains the last failure, when there was one.
	Problem string
	// Waiting is true while someone else acts and the page refreshes itself.
	Waiting bool
}

var stepLabels = []string{
	"Registered", "Approved by Setera", "Teams connected", "Users activated", "Syncing",
}

// journeyFor turns the onboarding status into the stepper. activated is
// the number of users from the import, for the finished state.
func journeyFor(st workflows.OnboardingStatus, orgID string, activated int) journey {
	current, failed := 0, false
	j := journey{}
	teams := "/orgs/" + orgID + "/settings/teams"

	switch st.Stage {
	case workflows.StageAwaitingApproval:
		current = 1
		j.Heading = "Your registration is waiting for approval"
		j.Who = "Setera"
		j.Next = "Setera checks every new registration, usually within one working day. " +
			"You do not need to do anything now: this page refreshes itself and shows " +
			"the next step as soon as Setera approves."
		j.Waiting = true
	case workflows.StageRejected:
		current, failed = 1, true
		j.Heading = "Setera did not approve this registration"
		j.Who = "You"
		j.Next = "If you think this is a mistake, contact Setera support and quote your " +
			"organisation's name."
	case workflows.StageExpired:
		current, failed = 1, true
		j.Heading = "This registration expired before it was approved"
		j.Who = "You"
		j.Next = "Registrations wait 30 days for approval. Contact Setera support to " +
			"have it looked at, or register again."
	case workflows.StageAwaitingConsent:
		current = 2
		j.Heading = "Setera approved your organisation: connect Microsoft Teams"
		j.Who = "You"
		j.Next = "A Microsoft 365 administrator of your organisation signs in at Microsoft " +
			"and allows OneSync to read users and presence. It takes about a minute."
		j.ActionURL, j.ActionLabel = teams, "Open Settings > Teams"
		j.Problem = explainFailure(st)
	case workflows.StageImporting:
		current = 3
		j.Heading = "OneSync is importing your Teams users"
		j.Who = "OneSync"
		j.Next = "OneSync checks the consent with Microsoft and matches your Teams users to " +
			"OneCloud extensions. This page refreshes itself and shows the result."
		j.Waiting = true
	case workflows.StageSyncing:
		current = len(stepLabels)
		j.Heading = plural(activated, "user") + " activated: presence is syncing"
		j.Who = "Nobody"
		j.Next = "Teams calls and meetings now show as busy on your colleagues' phones. " +
			"Check the users OneSync could not match and fix them in OneCloud or Teams."
		j.ActionURL, j.ActionLabel = "/orgs/"+orgID+"/result", "See the import result"
	default:
		j.Heading = "OneSync does not know this organisation's stage yet"
		j.Who = "OneSync"
		j.Next = "This page refreshes itself. If this stays, contact Setera support."
		j.Waiting = true
	}

	for i, l := range stepLabels {
		s := step{Label: l, State: "todo"}
		switch {
		case i < current:
			s.State = "done"
		case i == current && failed:
			s.State = "failed"
		case i == current:
			s.State = "current"
		}
		j.Steps = append(j.Steps, s)
	}
	return j
}

// explainFailure says what went wrong last and what to do about it. The
// workflow's LastError is already written for the admin; a few codes get
// a fuller explanation of what to do.
func explainFailure(st workflows.OnboardingStatus) string {
	switch st.LastErrorCode {
	case "":
		if st.LastError == "" {
			return ""
		}
	case workflows.ErrTenantTaken:
		return "This Microsoft tenant is already connected to another organisation in " +
			"OneSync, so it was refused. Sign in with an administrator of your own " +
			"organisation's tenant, or contact Setera support."
	case workflows.ErrTenantMismatch:
		return "Microsoft confirmed a different tenant than the one in the answer, so " +
			"OneSync refused it. Press the button again and finish the sign-in without " +
			"changing the address."
	}
	return st.LastError
}
