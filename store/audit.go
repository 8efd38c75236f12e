package store

import (
	"context"
	"fmt"
	"time"
)

// AddAudit appends an entry to the audit trail. At defaults to now.
func (db *DB) AddAudit(ctx context.Context, a Audit) error {
	if a.Actor == "" || a.Action == "" {
		return fmt.Errorf("add audit: empty actor or action")
	}
	if a.At.IsZero() {
		a.At = time.Now().UTC()
	}

	_, err := db.w.ExecContext(ctx, `INSERT INTO audit (at, actor, org_id, action, detail)
		VALUES ($1, $2, $3, $4, $5)`, ms(a.At), a.Actor, a.OrgID, a.Action, a.Detail)
	if err != nil {
		return fmt.Errorf("add audit: %w", err)
	}
	return nil
}

// AuditByOrg returns up to limit entries of an organisation's audit trail,
// newest first. A limit of zero or less means 100.
func (db *DB) AuditByOrg(ctx context.Context, orgID string, limit int) ([]Audit, error) {
	if limit <= 0 {
		limit = 100
	}

	rows, err := db.r.QueryContext(ctx, `SELECT id, at, actor, org_id, action, detail FROM audit
		WHERE org_id = $1 ORDER BY at DESC, id DESC LIMIT $2`, orgID, limit)
	if err != nil {
		return nil, fmt.Errorf("audit of %s: %w", orgID, err)
	}
	defer rows.Close()

	var out []Audit
	for rows.Next() {
		var a Audit
		var at int64
		if err := rows.Scan(&a.ID, &at, &a.Actor, &a.OrgID, &a.Action, &a.Detail); err != nil {
			return nil, fmt.Errorf("audit of %s: %w", orgID, err)
		}
		a.At = fromMS(at)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit of %s: %w", orgID, err)
	}
	return out, nil
}
