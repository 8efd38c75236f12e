package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// CreateConsentRequest stores a fresh consent state bound to an
// organisation and a session. ErrNotFound when the organisation does not
// exist, ErrDuplicate when the state value is already known.
func (db *DB) CreateConsentRequest(ctx context.Context, c ConsentRequest) error {
	if c.State == "" || c.OrgID == "" || c.SessionID == "" {
		return fmt.Errorf("create consent request: empty state, org or session")
	}
	if !c.ExpiresAt.After(c.CreatedAt) {
		return fmt.Errorf("create consent request: expiry must be after creation")
	}

	_, err := db.w.ExecContext(ctx, `INSERT INTO consent_requests
		(state, org_id, session_id, created_at, expires_at, used_at)
		VALUES ($1, $2, $3, $4, $5, 0)`,
		c.State, c.OrgID, c.SessionID, ms(c.CreatedAt), ms(c.ExpiresAt))
	switch {
	case isUnique(err):
		return fmt.Errorf("create consent request: %w", ErrDuplicate)
	case isForeignKey(err):
		return fmt.Errorf("create consent request: org %s: %w", c.OrgID, ErrNotFound)
	case err != nil:
		return fmt.Errorf("create consent request: %w", err)
	}
	return nil
}

// UseConsentRequest spends a consent state: it marks it used and returns
// it when it exists, belongs to orgID and sessionID, is unused and has not
// expired at now. A used or expired state gives ErrStateUsed; an unknown
// state, or one bound to another organisation or session, gives
// ErrNotFound and stays unspent. The check and the marking are one
// conditional UPDATE, so of two concurrent uses exactly one wins.
func (db *DB) UseConsentRequest(ctx context.Context, state, orgID, sessionID string,
	now time.Time) (ConsentRequest, error) {
	var c ConsentRequest
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE consent_requests SET used_at = $1
			WHERE state = $2 AND org_id = $3 AND session_id = $4
			AND used_at = 0 AND expires_at > $1`,
			ms(now), state, orgID, sessionID)
		if err != nil {
			return err
		}
		won, err := res.RowsAffected()
		if err != nil {
			return err
		}

		var created, expires, used int64
		err = tx.QueryRowContext(ctx, `SELECT state, org_id, session_id, created_at, expires_at,
			used_at FROM consent_requests WHERE state = $1`, state).
			Scan(&c.State, &c.OrgID, &c.SessionID, &created, &expires, &used)
		if err != nil {
			return notFound(err)
		}
		c.CreatedAt, c.ExpiresAt, c.UsedAt = fromMS(created), fromMS(expires), fromMS(used)

		switch {
		case won == 1:
			return nil
		case c.OrgID != orgID || c.SessionID != sessionID:
			return ErrNotFound
		default:
			return ErrStateUsed
		}
	})
	if err != nil {
		return ConsentRequest{}, fmt.Errorf("use consent state: %w", err)
	}
	return c, nil
}

// DeleteExpiredConsentRequests removes consent states that expired before
// now and returns how many went; used states are kept until then so that
// a replay is still told "already used".
func (db *DB) DeleteExpiredConsentRequests(ctx context.Context, now time.Time) (int, error) {
	res, err := db.w.ExecContext(ctx,
		`DELETE FROM consent_requests WHERE expires_at <= $1`, ms(now))
	if err != nil {
		return 0, fmt.Errorf("delete expired consent states: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete expired consent states: %w", err)
	}
	return int(n), nil
}
