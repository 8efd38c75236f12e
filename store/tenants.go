package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// BindTenant binds a Microsoft tenant to an organisation and makes it
// active. Binding it again to the same organisation reactivates it (a
// reconnect after revocation); a tenant bound to another organisation is
// refused with ErrTenantTaken. ErrNotFound when the organisation does not
// exist. The check and the write are one statement, so two organisations
// racing for one tenant cannot both win.
func (db *DB) BindTenant(ctx context.Context, tenantID, orgID string, at time.Time) error {
	if tenantID == "" || orgID == "" {
		return fmt.Errorf("bind tenant: empty tenant or org")
	}

	res, err := db.w.ExecContext(ctx, `INSERT INTO tenants
		(id, org_id, state, reason, delta_link, bound_at, updated_at)
		VALUES ($1, $2, $3, '', '', $4, $4)
		ON CONFLICT (id) DO UPDATE SET state = excluded.state, reason = '',
			bound_at = excluded.bound_at, updated_at = excluded.updated_at
		WHERE tenants.org_id = excluded.org_id`,
		tenantID, orgID, TenantActive, ms(at))
	if isForeignKey(err) {
		return fmt.Errorf("bind tenant %s: org %s: %w", tenantID, orgID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("bind tenant %s: %w", tenantID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("bind tenant %s: %w", tenantID, err)
	}
	if n == 0 {
		return fmt.Errorf("bind tenant %s to org %s: %w", tenantID, orgID, ErrTenantTaken)
	}
	return nil
}

const tenantColumns = `id, org_id, state, reason, delta_link, bound_at, updated_at`

func scanTenant(s interface{ Scan(...any) error }) (Tenant, error) {
	var t Tenant
	var bound, updated int64
	err := s.Scan(&t.ID, &t.OrgID, &t.State, &t.Reason, &t.DeltaLink, &bound, &updated)
	t.BoundAt, t.UpdatedAt = fromMS(bound), fromMS(updated)
	return t, err
}

// Tenant returns one tenant, or ErrNotFound.
func (db *DB) Tenant(ctx context.Context, id string) (Tenant, error) {
	row := db.r.QueryRowContext(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = $1`, id)
	t, err := scanTenant(row)
	if err != nil {
		return Tenant{}, fmt.Errorf("tenant %s: %w", id, notFound(err))
	}
	return t, nil
}

// TenantByOrg returns the tenant most recently bound to the organisation,
// or ErrNotFound when it never connected one.
func (db *DB) TenantByOrg(ctx context.Context, orgID string) (Tenant, error) {
	row := db.r.QueryRowContext(ctx, `SELECT `+tenantColumns+` FROM tenants
		WHERE org_id = $1 ORDER BY bound_at DESC, id LIMIT 1`, orgID)
	t, err := scanTenant(row)
	if err != nil {
		return Tenant{}, fmt.Errorf("tenant of org %s: %w", orgID, notFound(err))
	}
	return t, nil
}

// Tenants returns every tenant, most recently bound first.
func (db *DB) Tenants(ctx context.Context) ([]Tenant, error) {
	rows, err := db.r.QueryContext(ctx,
		`SELECT `+tenantColumns+` FROM tenants ORDER BY bound_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()

	var out []Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return out, nil
}

// SetTenantState records a tenant's state (TenantActive, TenantRevoked,
// TenantDisconnected) and why.
func (db *DB) SetTenantState(ctx context.Context, tenantID, state, reason string,
	at time.Time) error {
	switch state {
	case TenantActive, TenantRevoked, TenantDisconnected:
	default:
		return fmt.Errorf("set state of tenant %s: unknown state %q", tenantID, state)
	}

	err := rowsOne(db.w.ExecContext(ctx, `UPDATE tenants SET state = $1, reason = $2,
		updated_at = $3 WHERE id = $4`, state, reason, ms(at), tenantID))
	if err != nil {
		return fmt.Errorf("set state of tenant %s: %w", tenantID, err)
	}
	return nil
}

// SetDeltaLink stores the tenant's users delta link for the next re-read.
func (db *DB) SetDeltaLink(ctx context.Context, tenantID, link string) error {
	err := rowsOne(db.w.ExecContext(ctx,
		`UPDATE tenants SET delta_link = $1 WHERE id = $2`, link, tenantID))
	if err != nil {
		return fmt.Errorf("set delta link of tenant %s: %w", tenantID, err)
	}
	return nil
}

// upsertLinkSQL inserts a link or updates its description. When the
// extension stays the same, the presence, line state and change time are
// kept; when it changes, they take the new row's values (normally empty,
// so the sync pushes the state to the new extension). Seq never goes
// backwards either way.
const upsertLinkSQL = `INSERT INTO links
	(tenant_id, user_id, org_id, extension, display_name, email, matched_by, broken,
	 broken_reason, availability, activity, line_state, seq, changed_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
	ON CONFLICT (tenant_id, user_id) DO UPDATE SET
		availability = CASE WHEN links.extension = excluded.extension
			THEN links.availability ELSE excluded.availability END,
		activity = CASE WHEN links.extension = excluded.extension
			THEN links.activity ELSE excluded.activity END,
		line_state = CASE WHEN links.extension = excluded.extension
			THEN links.line_state ELSE excluded.line_state END,
		changed_at = CASE WHEN links.extension = excluded.extension
			THEN links.changed_at ELSE excluded.changed_at END,
		seq = CASE WHEN links.seq > excluded.seq THEN links.seq ELSE excluded.seq END,
		org_id = excluded.org_id,
		extension = excluded.extension,
		display_name = excluded.display_name,
		email = excluded.email,
		matched_by = excluded.matched_by,
		broken = excluded.broken,
		broken_reason = excluded.broken_reason`

func linkArgs(l Link) []any {
	return []any{l.TenantID, l.UserID, l.OrgID, l.Extension, l.DisplayName, l.Email,
		l.MatchedBy, boolInt(l.Broken), l.BrokenReason, l.Availability, l.Activity,
		l.LineState, l.Seq, ms(l.ChangedAt)}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func checkLink(l Link) error {
	if l.UserID == "" || l.Extension == "" {
		return fmt.Errorf("link: empty user or extension")
	}
	return nil
}

// tenantOrg reads the organisation a tenant belongs to inside tx.
func tenantOrg(ctx context.Context, tx *sql.Tx, tenantID string) (string, error) {
	var org string
	err := tx.QueryRowContext(ctx, `SELECT org_id FROM tenants WHERE id = $1`, tenantID).Scan(&org)
	if err != nil {
		return "", fmt.Errorf("tenant %s: %w", tenantID, notFound(err))
	}
	return org, nil
}

// ReplaceLinks makes links the tenant's whole link set in one transaction,
// as an import does: users not in links lose their link; a user whose
// extension is unchanged keeps their presence, line state, seq and change
// time. Each link's TenantID and OrgID are taken from the tenant.
// ErrNotFound when the tenant does not exist.
func (db *DB) ReplaceLinks(ctx context.Context, tenantID string, links []Link) error {
	seen := make(map[string]bool, len(links))
	for i, l := range links {
		if err := checkLink(l); err != nil {
			return fmt.Errorf("replace links of %s: row %d: %w", tenantID, i, err)
		}
		if seen[l.UserID] {
			return fmt.Errorf("replace links of %s: user %s twice", tenantID, l.UserID)
		}
		seen[l.UserID] = true
	}

	err := db.tx(ctx, func(tx *sql.Tx) error {
		org, err := tenantOrg(ctx, tx, tenantID)
		if err != nil {
			return err
		}

		rows, err := tx.QueryContext(ctx, `SELECT user_id FROM links WHERE tenant_id = $1`, tenantID)
		if err != nil {
			return err
		}
		var gone []string
		for rows.Next() {
			var u string
			if err := rows.Scan(&u); err != nil {
				rows.Close()
				return err
			}
			if !seen[u] {
				gone = append(gone, u)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}

		del, err := tx.PrepareContext(ctx, `DELETE FROM links WHERE tenant_id = $1 AND user_id = $2`)
		if err != nil {
			return err
		}
		defer del.Close()
		for _, u := range gone {
			if _, err := del.ExecContext(ctx, tenantID, u); err != nil {
				return err
			}
		}

		up, err := tx.PrepareContext(ctx, upsertLinkSQL)
		if err != nil {
			return err
		}
		defer up.Close()
		for _, l := range links {
			l.TenantID, l.OrgID = tenantID, org
			if _, err := up.ExecContext(ctx, linkArgs(l)...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replace links of %s: %w", tenantID, err)
	}
	return nil
}

// UpsertLink adds one link or updates it, keeping its states as
// ReplaceLinks does. OrgID is taken from the tenant. ErrNotFound when the
// tenant does not exist.
func (db *DB) UpsertLink(ctx context.Context, l Link) error {
	if err := checkLink(l); err != nil {
		return fmt.Errorf("upsert link: %w", err)
	}

	err := db.tx(ctx, func(tx *sql.Tx) error {
		org, err := tenantOrg(ctx, tx, l.TenantID)
		if err != nil {
			return err
		}
		l.OrgID = org
		_, err = tx.ExecContext(ctx, upsertLinkSQL, linkArgs(l)...)
		return err
	})
	if err != nil {
		return fmt.Errorf("upsert link %s/%s: %w", l.TenantID, l.UserID, err)
	}
	return nil
}

// DeleteLink removes a user's link. Removing a missing link is not an
// error, so a retried delta step is harmless.
func (db *DB) DeleteLink(ctx context.Context, tenantID, userID string) error {
	_, err := db.w.ExecContext(ctx,
		`DELETE FROM links WHERE tenant_id = $1 AND user_id = $2`, tenantID, userID)
	if err != nil {
		return fmt.Errorf("delete link %s/%s: %w", tenantID, userID, err)
	}
	return nil
}

const linkColumns = `tenant_id, user_id, org_id, extension, display_name, email, matched_by,
	broken, broken_reason, availability, activity, line_state, seq, changed_at`

func (db *DB) queryLinks(ctx context.Context, where string, arg string) ([]Link, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+linkColumns+` FROM links WHERE `+where+
		` ORDER BY extension, user_id`, arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	var out []Link
	for rows.Next() {
		var l Link
		var broken, changed int64
		err := rows.Scan(&l.TenantID, &l.UserID, &l.OrgID, &l.Extension, &l.DisplayName,
			&l.Email, &l.MatchedBy, &broken, &l.BrokenReason, &l.Availability, &l.Activity,
			&l.LineState, &l.Seq, &changed)
		if err != nil {
			return nil, err
		}
		l.Broken, l.ChangedAt = broken != 0, fromMS(changed)
		out = append(out, l)
	}
	return out, rows.Err()
}

// Links returns a tenant's links ordered by extension.
func (db *DB) Links(ctx context.Context, tenantID string) ([]Link, error) {
	out, err := db.queryLinks(ctx, `tenant_id = $1`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("links of tenant %s: %w", tenantID, err)
	}
	return out, nil
}

// LinksByOrg returns an organisation's links ordered by extension, for the
// portal's users page.
func (db *DB) LinksByOrg(ctx context.Context, orgID string) ([]Link, error) {
	out, err := db.queryLinks(ctx, `org_id = $1`, orgID)
	if err != nil {
		return nil, fmt.Errorf("links of org %s: %w", orgID, err)
	}
	return out, nil
}

// MarkLinkBroken records that the PBX does not know the link's extension;
// the sync skips it until an import or an UpsertLink clears the flag.
func (db *DB) MarkLinkBroken(ctx context.Context, tenantID, userID, reason string) error {
	err := rowsOne(db.w.ExecContext(ctx, `UPDATE links SET broken = 1, broken_reason = $1
		WHERE tenant_id = $2 AND user_id = $3`, reason, tenantID, userID))
	if err != nil {
		return fmt.Errorf("mark link %s/%s broken: %w", tenantID, userID, err)
	}
	return nil
}

// saveStateSQL stores a presence and, only when the update's seq is newer
// than the stored one, its line state, seq and change time. An update
// older than the stored seq changes nothing, so a late retry of an old
// window cannot roll a state back.
const saveStateSQL = `UPDATE links SET
		availability = $1, activity = $2,
		line_state = CASE WHEN $4 > seq THEN $3 ELSE line_state END,
		changed_at = CASE WHEN $4 > seq THEN $5 ELSE changed_at END,
		seq = CASE WHEN $4 > seq THEN $4 ELSE seq END
	WHERE tenant_id = $6 AND user_id = $7 AND seq <= $4`

// savePresenceSQL stores a presence only, unless the stored seq is newer.
const savePresenceSQL = `UPDATE links SET availability = $1, activity = $2
	WHERE tenant_id = $3 AND user_id = $4 AND seq <= $5`

// SaveStates stores the newest presence and line state of many linked
// users in one transaction with one prepared statement. For each update:
// if Seq is greater than the stored seq, presence, line state, seq and
// ChangedAt are all stored; if Seq equals it, only the presence is
// (a presence change that did not change the line state); if it is
// smaller, nothing is. Updates for users without a link are ignored.
func (db *DB) SaveStates(ctx context.Context, tenantID string, updates []StateUpdate) error {
	if len(updates) == 0 {
		return nil
	}

	err := db.tx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, saveStateSQL)
		if err != nil {
			return err
		}
		defer st.Close()

		for _, u := range updates {
			_, err := st.ExecContext(ctx, u.Availability, u.Activity, u.LineState, u.Seq,
				ms(u.ChangedAt), tenantID, u.UserID)
			if err != nil {
				return fmt.Errorf("user %s: %w", u.UserID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save states of tenant %s: %w", tenantID, err)
	}
	return nil
}

// SavePresences stores only the Teams presence (availability, activity) of
// many linked users, leaving line states alone; an update whose Seq is
// below the stored seq is ignored. LineState and ChangedAt are not read.
func (db *DB) SavePresences(ctx context.Context, tenantID string, ps []StateUpdate) error {
	if len(ps) == 0 {
		return nil
	}

	err := db.tx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, savePresenceSQL)
		if err != nil {
			return err
		}
		defer st.Close()

		for _, u := range ps {
			_, err := st.ExecContext(ctx, u.Availability, u.Activity, tenantID, u.UserID, u.Seq)
			if err != nil {
				return fmt.Errorf("user %s: %w", u.UserID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save presences of tenant %s: %w", tenantID, err)
	}
	return nil
}
