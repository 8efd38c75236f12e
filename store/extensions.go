package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/setera/onesync/pbx"
)

// SetExtensions replaces an organisation's extensions with exts, in one
// transaction. It serves SIP deployments, where the PBX has no directory
// API and the admin uploads the extensions as CSV. Numbers must be
// non-empty and unique; ErrNotFound when the organisation does not exist.
func (db *DB) SetExtensions(ctx context.Context, orgID string, exts []pbx.Extension) error {
	seen := make(map[string]bool, len(exts))
	for i, e := range exts {
		n := strings.TrimSpace(e.Number)
		if n == "" {
			return fmt.Errorf("set extensions of %s: row %d: empty number", orgID, i+1)
		}
		if seen[n] {
			return fmt.Errorf("set extensions of %s: number %s twice: %w", orgID, n, ErrDuplicate)
		}
		seen[n] = true
	}

	err := db.tx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM orgs WHERE id = $1`, orgID).Scan(&one)
		if err != nil {
			return fmt.Errorf("org %s: %w", orgID, notFound(err))
		}

		if _, err := tx.ExecContext(ctx, `DELETE FROM extensions WHERE org_id = $1`, orgID); err != nil {
			return err
		}

		st, err := tx.PrepareContext(ctx, `INSERT INTO extensions (org_id, number, email, name, phone)
			VALUES ($1, $2, $3, $4, $5)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, e := range exts {
			_, err := st.ExecContext(ctx, orgID, strings.TrimSpace(e.Number),
				strings.TrimSpace(e.Email), strings.TrimSpace(e.Name), strings.TrimSpace(e.Phone))
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set extensions of %s: %w", orgID, err)
	}
	return nil
}

// Extensions returns an organisation's uploaded extensions ordered by
// number; none (and no error) when nothing was uploaded.
func (db *DB) Extensions(ctx context.Context, orgID string) ([]pbx.Extension, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT number, email, name, phone FROM extensions
		WHERE org_id = $1 ORDER BY number`, orgID)
	if err != nil {
		return nil, fmt.Errorf("extensions of %s: %w", orgID, err)
	}
	defer rows.Close()

	var out []pbx.Extension
	for rows.Next() {
		var e pbx.Extension
		if err := rows.Scan(&e.Number, &e.Email, &e.Name, &e.Phone); err != nil {
			return nil, fmt.Errorf("extensions of %s: %w", orgID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("extensions of %s: %w", orgID, err)
	}
	return out, nil
}

// Directory is a pbx.Directory backed by the extensions uploaded to the
// store. The org it is asked about is the OneSync organisation id.
type Directory struct {
	DB *DB
}

var _ pbx.Directory = Directory{}

// Extensions lists the organisation's uploaded extensions.
func (d Directory) Extensions(ctx context.Context, org string) ([]pbx.Extension, error) {
	return d.DB.Extensions(ctx, org)
}

// Directory returns the store as a pbx.Directory over uploaded extensions.
func (db *DB) Directory() pbx.Directory {
	return Directory{DB: db}
}
