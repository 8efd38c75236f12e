package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// CreateOrgWithAdmin stores a new organisation and its first admin in one
// transaction. It returns ErrDuplicate when another organisation has the
// same name or another admin the same email, both compared without regard
// to case (and, for names, to repeated spaces); nothing is stored then.
func (db *DB) CreateOrgWithAdmin(ctx context.Context, org Org, admin Admin) error {
	if org.ID == "" || admin.ID == "" {
		return fmt.Errorf("create org: empty id")
	}
	if strings.TrimSpace(org.Name) == "" || strings.TrimSpace(admin.Email) == "" {
		return fmt.Errorf("create org: empty name or email")
	}

	now := time.Now().UTC()
	if org.CreatedAt.IsZero() {
		org.CreatedAt = now
	}
	if org.StageSince.IsZero() {
		org.StageSince = org.CreatedAt
	}
	if admin.CreatedAt.IsZero() {
		admin.CreatedAt = org.CreatedAt
	}
	admin.OrgID = org.ID

	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO orgs
			(id, name, name_key, pbx_org, stage, stage_since, last_error, created_at, profile)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			org.ID, strings.TrimSpace(org.Name), key(org.Name), org.PBXOrg, org.Stage,
			ms(org.StageSince), org.LastError, ms(org.CreatedAt), org.Profile)
		if err != nil {
			return err
		}

		_, err = tx.ExecContext(ctx, `INSERT INTO admins
			(id, org_id, name, email, phone, password_hash, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			admin.ID, admin.OrgID, admin.Name, key(admin.Email), admin.Phone,
			admin.PasswordHash, ms(admin.CreatedAt))
		return err
	})
	if isUnique(err) {
		return fmt.Errorf("create org: %w", ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("create org: %w", err)
	}
	return nil
}

const orgColumns = `id, name, pbx_org, stage, stage_since, last_error, created_at, profile`

func scanOrg(s interface{ Scan(...any) error }) (Org, error) {
	var o Org
	var since, created int64
	err := s.Scan(&o.ID, &o.Name, &o.PBXOrg, &o.Stage, &since, &o.LastError, &created, &o.Profile)
	o.StageSince, o.CreatedAt = fromMS(since), fromMS(created)
	return o, err
}

// Org returns one organisation, or ErrNotFound.
func (db *DB) Org(ctx context.Context, id string) (Org, error) {
	row := db.r.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM orgs WHERE id = $1`, id)
	o, err := scanOrg(row)
	if err != nil {
		return Org{}, fmt.Errorf("org %s: %w", id, notFound(err))
	}
	return o, nil
}

// Orgs returns every organisation, newest first, for the staff pages.
func (db *DB) Orgs(ctx context.Context) ([]Org, error) {
	rows, err := db.r.QueryContext(ctx,
		`SELECT `+orgColumns+` FROM orgs ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list orgs: %w", err)
	}
	defer rows.Close()

	var out []Org
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, fmt.Errorf("list orgs: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list orgs: %w", err)
	}
	return out, nil
}

// SetOrgStage mirrors the Onboarding workflow's stage into the store.
// StageSince moves to at only when the stage changes, so the portal can
// show how long a stage has lasted.
func (db *DB) SetOrgStage(ctx context.Context, orgID, stage, lastError string, at time.Time) error {
	err := rowsOne(db.w.ExecContext(ctx, `UPDATE orgs SET
			stage_since = CASE WHEN stage = $1 THEN stage_since ELSE $2 END,
			stage = $1, last_error = $3
		WHERE id = $4`, stage, ms(at), lastError, orgID))
	if err != nil {
		return fmt.Errorf("set stage of org %s: %w", orgID, err)
	}
	return nil
}

// SetOrgProfile stores the organisation's presence mapping profile (JSON;
// empty for the default).
func (db *DB) SetOrgProfile(ctx context.Context, orgID, profileJSON string) error {
	err := rowsOne(db.w.ExecContext(ctx,
		`UPDATE orgs SET profile = $1 WHERE id = $2`, profileJSON, orgID))
	if err != nil {
		return fmt.Errorf("set profile of org %s: %w", orgID, err)
	}
	return nil
}

// SetOrgPBX stores the organisation's id at the PBX.
func (db *DB) SetOrgPBX(ctx context.Context, orgID, pbxOrg string) error {
	err := rowsOne(db.w.ExecContext(ctx,
		`UPDATE orgs SET pbx_org = $1 WHERE id = $2`, pbxOrg, orgID))
	if err != nil {
		return fmt.Errorf("set pbx org of org %s: %w", orgID, err)
	}
	return nil
}

const adminColumns = `id, org_id, name, email, phone, password_hash, created_at`

func scanAdmin(s interface{ Scan(...any) error }) (Admin, error) {
	var a Admin
	var created int64
	err := s.Scan(&a.ID, &a.OrgID, &a.Name, &a.Email, &a.Phone, &a.PasswordHash, &created)
	a.CreatedAt = fromMS(created)
	return a, err
}

// AdminByEmail finds an admin by email, ignoring case; ErrNotFound if none.
func (db *DB) AdminByEmail(ctx context.Context, email string) (Admin, error) {
	row := db.r.QueryRowContext(ctx,
		`SELECT `+adminColumns+` FROM admins WHERE email = $1`, key(email))
	a, err := scanAdmin(row)
	if err != nil {
		return Admin{}, fmt.Errorf("admin by email: %w", notFound(err))
	}
	return a, nil
}

// Admin returns one admin account, or ErrNotFound.
func (db *DB) Admin(ctx context.Context, id string) (Admin, error) {
	row := db.r.QueryRowContext(ctx, `SELECT `+adminColumns+` FROM admins WHERE id = $1`, id)
	a, err := scanAdmin(row)
	if err != nil {
		return Admin{}, fmt.Errorf("admin %s: %w", id, notFound(err))
	}
	return a, nil
}

// SetAdminPassword replaces an admin's password hash.
func (db *DB) SetAdminPassword(ctx context.Context, id, hash string) error {
	err := rowsOne(db.w.ExecContext(ctx,
		`UPDATE admins SET password_hash = $1 WHERE id = $2`, hash, id))
	if err != nil {
		return fmt.Errorf("set password of admin %s: %w", id, err)
	}
	return nil
}

// CreateStaff stores a staff account; ErrDuplicate when the email (any
// case) is taken.
func (db *DB) CreateStaff(ctx context.Context, s Staff) error {
	if s.ID == "" || strings.TrimSpace(s.Email) == "" {
		return fmt.Errorf("create staff: empty id or email")
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = time.Now().UTC()
	}

	_, err := db.w.ExecContext(ctx, `INSERT INTO staff (id, email, name, password_hash, created_at)
		VALUES ($1, $2, $3, $4, $5)`,
		s.ID, key(s.Email), s.Name, s.PasswordHash, ms(s.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("create staff: %w", ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("create staff: %w", err)
	}
	return nil
}

const staffColumns = `id, email, name, password_hash, created_at`

func scanStaff(s interface{ Scan(...any) error }) (Staff, error) {
	var st Staff
	var created int64
	err := s.Scan(&st.ID, &st.Email, &st.Name, &st.PasswordHash, &created)
	st.CreatedAt = fromMS(created)
	return st, err
}

// StaffByEmail finds a staff account by email, ignoring case.
func (db *DB) StaffByEmail(ctx context.Context, email string) (Staff, error) {
	row := db.r.QueryRowContext(ctx,
		`SELECT `+staffColumns+` FROM staff WHERE email = $1`, key(email))
	s, err := scanStaff(row)
	if err != nil {
		return Staff{}, fmt.Errorf("staff by email: %w", notFound(err))
	}
	return s, nil
}

// Staff returns one staff account, or ErrNotFound.
func (db *DB) Staff(ctx context.Context, id string) (Staff, error) {
	row := db.r.QueryRowContext(ctx, `SELECT `+staffColumns+` FROM staff WHERE id = $1`, id)
	s, err := scanStaff(row)
	if err != nil {
		return Staff{}, fmt.Errorf("staff %s: %w", id, notFound(err))
	}
	return s, nil
}

// SetStaffPassword replaces a staff member's password hash.
func (db *DB) SetStaffPassword(ctx context.Context, id, hash string) error {
	err := rowsOne(db.w.ExecContext(ctx,
		`UPDATE staff SET password_hash = $1 WHERE id = $2`, hash, id))
	if err != nil {
		return fmt.Errorf("set password of staff %s: %w", id, err)
	}
	return nil
}

// CreateSession stores a session. Its ID must already be a hash of the
// cookie value.
func (db *DB) CreateSession(ctx context.Context, s Session) error {
	if s.ID == "" || s.AccountID == "" {
		return fmt.Errorf("create session: empty id or account")
	}
	if s.Kind != SessionAdmin && s.Kind != SessionStaff {
		return fmt.Errorf("create session: unknown kind %q", s.Kind)
	}

	_, err := db.w.ExecContext(ctx, `INSERT INTO sessions
		(id, kind, account_id, csrf_token, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		s.ID, s.Kind, s.AccountID, s.CSRFToken, ms(s.CreatedAt), ms(s.ExpiresAt))
	if isUnique(err) {
		return fmt.Errorf("create session: %w", ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Session returns the session with this id if it has not expired at now;
// otherwise ErrNotFound.
func (db *DB) Session(ctx context.Context, id string, now time.Time) (Session, error) {
	var s Session
	var created, expires int64
	err := db.r.QueryRowContext(ctx, `SELECT id, kind, account_id, csrf_token, created_at, expires_at
		FROM sessions WHERE id = $1 AND expires_at > $2`, id, ms(now)).
		Scan(&s.ID, &s.Kind, &s.AccountID, &s.CSRFToken, &created, &expires)
	if err != nil {
		return Session{}, fmt.Errorf("session: %w", notFound(err))
	}
	s.CreatedAt, s.ExpiresAt = fromMS(created), fromMS(expires)
	return s, nil
}

// DeleteSession removes a session (log out). Deleting a missing session is
// not an error, so logging out twice is harmless.
func (db *DB) DeleteSession(ctx context.Context, id string) error {
	if _, err := db.w.ExecContext(ctx, `DELETE FROM sessions WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes the sessions expired at now and returns
// how many went.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	res, err := db.w.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, ms(now))
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return int(n), nil
}
