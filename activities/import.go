package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/setera/onesync/graph"
	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/presence"
	"github.com/setera/onesync/store"
	"github.com/setera/onesync/workflows"
)

// maxListed bounds each name list of an ImportResult. The result is kept in
// workflow history, so a tenant of thousands of users must not put every
// name there; the counts stay exact and the users page lists everybody.
const maxListed = 100

// ImportUsers lists the tenant's enabled member users, reads the
// organisation's extensions from the PBX directory, matches them (see
// Match) and replaces the tenant's links with the outcome. Line states
// already pushed for an extension are carried into the new links, so that
// the next push continues the extension's sequence.
func (a *Activities) ImportUsers(ctx context.Context,
	in workflows.ImportUsersInput) (workflows.ImportResult, error) {
	_, org, err := a.tenantAndOrg(ctx, "import users", in.TenantID, in.OrgID)
	if err != nil {
		return workflows.ImportResult{}, err
	}

	users, err := a.Graph.ListUsers(ctx, in.TenantID)
	if err != nil {
		return workflows.ImportResult{}, a.graphCallError("list users", in.TenantID, err)
	}
	exts, err := a.extensions(ctx, org)
	if err != nil {
		return workflows.ImportResult{}, fmt.Errorf("list extensions of org %s: %w", in.OrgID, err)
	}
	old, err := a.Store.Links(ctx, in.TenantID)
	if err != nil {
		return workflows.ImportResult{}, storeErr("load links", err)
	}

	m := Match(users, exts, a.region())
	links := carryStates(newLinks(in, m.Pairs), old)
	if err := a.Store.ReplaceLinks(ctx, in.TenantID, links); err != nil {
		return workflows.ImportResult{}, storeErr("store links", err)
	}

	res := importResult(m)
	a.log().Info("users imported", zap.String("tenant", in.TenantID), zap.String("org", in.OrgID),
		zap.Int("activated", res.Activated), zap.Int("teamsWithoutExtension", res.TeamsWithoutExt),
		zap.Int("extensionsWithoutTeams", res.ExtWithoutTeams), zap.Int("ambiguous", res.Ambiguous))
	detail := fmt.Sprintf("%d activated, %d Teams users without an extension, "+
		"%d extensions without a Teams user, %d ambiguous",
		res.Activated, res.TeamsWithoutExt, res.ExtWithoutTeams, res.Ambiguous)
	if err := a.audit(ctx, "system", in.OrgID, "users-imported", detail); err != nil {
		return workflows.ImportResult{}, err
	}
	return res, nil
}

// RefreshUsers applies the tenant's users delta: members not yet linked are
// matched against the extensions nobody holds and linked; removed,
// disabled or guest users are unlinked and their extension, if it was left
// in another state, is set back to available first. Users that stay linked
// keep their link (an address change does not silently move a person to
// another extension; a new import does that). An expired delta link starts
// over with a fresh delta, which lists every user, so links of users that
// no longer exist are removed then too.
func (a *Activities) RefreshUsers(ctx context.Context,
	in workflows.RefreshUsersInput) (workflows.RefreshUsersResult, error) {
	tenant, org, err := a.tenantAndOrg(ctx, "refresh users", in.TenantID, in.OrgID)
	if err != nil {
		return workflows.RefreshUsersResult{}, err
	}

	delta, full, err := a.userChanges(ctx, tenant)
	if err != nil {
		return workflows.RefreshUsersResult{}, err
	}
	links, err := a.Store.Links(ctx, in.TenantID)
	if err != nil {
		return workflows.RefreshUsersResult{}, storeErr("load links", err)
	}
	byUser := map[string]store.Link{}
	for _, l := range links {
		byUser[l.UserID] = l
	}

	// Who goes: removed users, users who are no longer members and, after
	// a full delta, linked users that it does not list.
	gone := map[string]bool{}
	for _, id := range delta.Removed {
		gone[id] = true
	}
	var fresh []graph.User
	seen := map[string]bool{}
	for _, u := range delta.Changed {
		seen[u.ID] = true
		if !u.Member() {
			gone[u.ID] = true
			continue
		}
		if _, linked := byUser[u.ID]; !linked {
			fresh = append(fresh, u)
		}
	}
	if full {
		for id := range byUser {
			if !seen[id] {
				gone[id] = true
			}
		}
	}

	var res workflows.RefreshUsersResult
	for _, l := range links {
		if !gone[l.UserID] {
			continue
		}
		if err := a.unlink(ctx, org, l); err != nil {
			return res, err
		}
		delete(byUser, l.UserID)
		res.Unlinked++
	}

	if len(fresh) > 0 {
		n, err := a.linkFresh(ctx, in, org, fresh, byUser, links)
		res.Linked = n
		if err != nil {
			return res, err
		}
	}

	if err := a.Store.SetDeltaLink(ctx, in.TenantID, delta.DeltaLink); err != nil {
		return res, storeErr("store delta link", err)
	}
	if res.Linked > 0 || res.Unlinked > 0 {
		a.log().Info("users refreshed", zap.String("tenant", in.TenantID),
			zap.Int("linked", res.Linked), zap.Int("unlinked", res.Unlinked))
		detail := fmt.Sprintf("%d linked, %d unlinked", res.Linked, res.Unlinked)
		if err := a.audit(ctx, "system", in.OrgID, "users-refreshed", detail); err != nil {
			return res, err
		}
	}
	return res, nil
}

// userChanges reads the users delta from the tenant's delta link, or a
// fresh delta when there is none or Graph no longer knows it. full reports
// a fresh delta, which lists every user of the tenant.
func (a *Activities) userChanges(ctx context.Context,
	t store.Tenant) (graph.UserDelta, bool, error) {
	if t.DeltaLink != "" {
		d, err := a.Graph.UserChanges(ctx, t.ID, t.DeltaLink)
		if err == nil {
			return d, false, nil
		}
		if !deltaExpired(err) {
			return graph.UserDelta{}, false, a.graphCallError("users delta", t.ID, err)
		}
		a.log().Info("users delta link expired, starting over", zap.String("tenant", t.ID))
	}

	d, err := a.Graph.UserChanges(ctx, t.ID, "")
	if err != nil {
		return graph.UserDelta{}, false, a.graphCallError("users delta", t.ID, err)
	}
	return d, true, nil
}

// deltaExpired reports whether Graph refused a delta link as too old or
// unknown: 410 Gone, or a syncStateNotFound / resyncRequired style code.
func deltaExpired(err error) bool {
	var ge *graph.Error
	if errors.As(err, &ge) && ge != nil {
		code := strings.ToLower(ge.Code)
		if ge.Status == http.StatusGone || strings.Contains(code, "syncstate") ||
			strings.Contains(code, "resync") {
			return true
		}
	}
	f := classifyGraph(err)
	return f.Status == http.StatusGone || f.Class == graph.ClassNotFound
}

// unlink releases a leaving user's extension and deletes the link.
func (a *Activities) unlink(ctx context.Context, org store.Org, l store.Link) error {
	if !l.Broken && l.LineState != "" && l.LineState != string(presence.Available) {
		out := a.publish(ctx, org.PBXOrg, l.TenantID, l.UserID, l.Extension,
			presence.Outcome{State: presence.Available, Reason: "user removed from Teams"}, l.Seq)
		if out.err != nil && !out.notFound {
			return fmt.Errorf("release extension %s of removed user: %w", l.Extension, out.err)
		}
	}
	if err := a.Store.DeleteLink(ctx, l.TenantID, l.UserID); err != nil {
		return storeErr("delete link of user "+l.UserID, err)
	}
	return nil
}

// linkFresh matches new members against the extensions nobody holds and
// stores the unique matches; it returns how many it linked. before is the
// tenant's link set before this refresh.
func (a *Activities) linkFresh(ctx context.Context, in workflows.RefreshUsersInput, org store.Org,
	fresh []graph.User, byUser map[string]store.Link, before []store.Link) (int, error) {
	exts, err := a.extensions(ctx, org)
	if err != nil {
		return 0, fmt.Errorf("list extensions of org %s: %w", in.OrgID, err)
	}
	held := map[string]bool{}
	for _, l := range byUser {
		held[l.Extension] = true
	}
	var free []pbx.Extension
	for _, e := range exts {
		if !held[e.Number] {
			free = append(free, e)
		}
	}

	m := Match(fresh, free, a.region())
	in2 := workflows.ImportUsersInput{OrgID: in.OrgID, TenantID: in.TenantID}
	n := 0
	// The sequence of an extension whose user just left continues.
	for _, l := range carryStates(newLinks(in2, m.Pairs), before) {
		if err := a.Store.UpsertLink(ctx, l); err != nil {
			return n, storeErr("store link of user "+l.UserID, err)
		}
		n++
	}
	return n, nil
}

// graphCallError wraps a Graph failure: permanent classes become the
// contract's non-retryable errors, the rest is retried.
func (a *Activities) graphCallError(op, tenant string, err error) error {
	if e := a.permanentGraphError(tenant, err); e != nil {
		return e
	}
	return fmt.Errorf("%s of tenant %s: %w", op, tenant, err)
}

func newLinks(in workflows.ImportUsersInput, pairs []Pair) []store.Link {
	links := make([]store.Link, 0, len(pairs))
	for _, p := range pairs {
		email := p.User.Mail
		if email == "" {
			email = p.User.UPN
		}
		links = append(links, store.Link{
			TenantID:    in.TenantID,
			UserID:      p.User.ID,
			OrgID:       in.OrgID,
			Extension:   p.Extension.Number,
			DisplayName: p.User.DisplayName,
			Email:       email,
			MatchedBy:   p.By,
		})
	}
	return links
}

// carryStates copies what was pushed before into new links: an extension's
// sequence number always (the PBX ignores a sequence that goes back), and
// the line state and presence when the same user keeps the extension.
func carryStates(links, old []store.Link) []store.Link {
	seqByExt := map[string]int64{}
	byUser := map[string]store.Link{}
	for _, l := range old {
		seqByExt[l.Extension] = max(seqByExt[l.Extension], l.Seq)
		byUser[l.UserID] = l
	}
	for i := range links {
		l := &links[i]
		l.Seq = seqByExt[l.Extension]
		if o, ok := byUser[l.UserID]; ok && o.Extension == l.Extension {
			l.LineState, l.Availability, l.Activity = o.LineState, o.Availability, o.Activity
			l.ChangedAt = o.ChangedAt
		} else if l.Seq > 0 {
			// Someone else's last state: unknown for this user, so the first
			// poll pushes the user's own state.
			l.LineState = ""
		}
	}
	return links
}

func importResult(m Matching) workflows.ImportResult {
	res := workflows.ImportResult{
		Activated:       len(m.Pairs),
		TeamsWithoutExt: len(m.UnmatchedUsers),
		ExtWithoutTeams: len(m.UnmatchedExts),
		Ambiguous:       len(m.Ambiguous),
	}
	for _, u := range m.UnmatchedUsers {
		res.UnmatchedTeams = appendCapped(res.UnmatchedTeams, userLabel(u))
	}
	for _, e := range m.UnmatchedExts {
		res.UnmatchedExts = appendCapped(res.UnmatchedExts, extLabel(e))
	}
	for _, am := range m.Ambiguous {
		label := userLabel(am.User) + " (extensions " + strings.Join(am.Extensions, ", ") + ")"
		res.AmbiguousUsers = appendCapped(res.AmbiguousUsers, label)
	}
	return res
}

func appendCapped(s []string, v string) []string {
	if len(s) >= maxListed {
		return s
	}
	return append(s, v)
}

func userLabel(u graph.User) string {
	addr := u.Mail
	if addr == "" {
		addr = u.UPN
	}
	switch {
	case u.DisplayName == "":
		return addr
	case addr == "":
		return u.DisplayName
	}
	return u.DisplayName + " <" + addr + ">"
}

func extLabel(e pbx.Extension) string {
	parts := []string{e.Number}
	if e.Name != "" {
		parts = append(parts, e.Name)
	}
	if e.Email != "" {
		parts = append(parts, "<"+e.Email+">")
	}
	return strings.Join(parts, " ")
}
