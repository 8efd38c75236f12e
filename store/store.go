package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The dialects Open knows. Queries are the same for both; only the DSN
// handling, the connection pools and one DDL placeholder differ.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DB is OneSync's store. It is safe for concurrent use by many goroutines.
//
// On SQLite every write goes through a pool of exactly one connection, so
// writers inside one process queue in Go instead of failing with
// SQLITE_BUSY; reads use a separate pool that WAL lets run beside the
// writer. Between processes sharing one file, busy_timeout and BEGIN
// IMMEDIATE make writers wait for each other. On PostgreSQL both pools are
// the same.
type DB struct {
	w       *sql.DB // writes and transactions
	r       *sql.DB // plain reads; the same as w except on a SQLite file
	dialect string
}

// Open connects to the store named by dsn and applies any migration it has
// not applied yet.
//
// dsn is "sqlite:<path>" for a file (its folder is created),
// "sqlite::memory:" for a private in-memory database (tests), or a
// "postgres://" or "postgresql://" URL; a search_path parameter in the URL
// selects the schema.
func Open(ctx context.Context, dsn string) (*DB, error) {
	db, err := open(dsn)
	if err != nil {
		return nil, err
	}

	if err := db.pingAtStart(ctx); err != nil {
		db.Close()
		return nil, err
	}

	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func open(dsn string) (*DB, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		p, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		p.SetMaxOpenConns(20)
		p.SetMaxIdleConns(5)
		p.SetConnMaxIdleTime(5 * time.Minute)
		return &DB{w: p, r: p, dialect: DialectPostgres}, nil

	case strings.HasPrefix(dsn, "sqlite:"):
		return openSQLite(strings.TrimPrefix(dsn, "sqlite:"))

	default:
		return nil, fmt.Errorf("open store: dsn must start with sqlite: or postgres://")
	}
}

// sqlitePragmas are applied to every SQLite connection: WAL so readers do
// not block the writer, a busy timeout for other processes on the same
// file, foreign keys on, and NORMAL sync, which WAL keeps crash-safe.
const sqlitePragmas = "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)" +
	"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"

func openSQLite(path string) (*DB, error) {
	if path == "" {
		return nil, fmt.Errorf("open store: sqlite: needs a file path or :memory:")
	}
	if path == ":memory:" {
		// Each connection to :memory: is its own database, so one
		// connection serves everything and is never closed while open.
		m, err := sql.Open("sqlite", ":memory:?_pragma=foreign_keys(1)")
		if err != nil {
			return nil, fmt.Errorf("open sqlite memory: %w", err)
		}
		m.SetMaxOpenConns(1)
		m.SetMaxIdleConns(1)
		m.SetConnMaxLifetime(0)
		m.SetConnMaxIdleTime(0)
		return &DB{w: m, r: m, dialect: DialectSQLite}, nil
	}

	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create data folder %s: %w", dir, err)
		}
	}

	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	base := path + sep + sqlitePragmas

	w, err := sql.Open("sqlite", base+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	r, err := sql.Open("sqlite", base+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	return &DB{w: w, r: r, dialect: DialectSQLite}, nil
}

// Close closes every connection of the store.
func (db *DB) Close() error {
	err := db.w.Close()
	if db.r != db.w {
		err = errors.Join(err, db.r.Close())
	}
	if err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Ping checks that the database answers, for health checks.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", db.dialect, err)
	}
	if db.r != db.w {
		if err := db.r.PingContext(ctx); err != nil {
			return fmt.Errorf("ping %s reader: %w", db.dialect, err)
		}
	}
	return nil
}

// pingAtStart is the first Ping. When several processes open a new SQLite
// file at once, the switch to WAL that each first connection makes can
// answer SQLITE_BUSY without waiting for the busy timeout; that passes as
// soon as the first of them has switched, so it is retried for a while.
func (db *DB) pingAtStart(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := db.Ping(ctx)
		if err == nil || db.dialect != DialectSQLite || !isBusy(err) ||
			time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// isBusy reports whether SQLite refused because another connection holds
// the lock.
func isBusy(err error) bool {
	return strings.Contains(err.Error(), "SQLITE_BUSY")
}

// Dialect names the database behind the store: "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.dialect }

// migration is one numbered file of migrations/.
type migration struct {
	version int64
	name    string
	sql     string
}

// migrations lists the embedded migrations in version order. A file is
// named <version>_<words>.sql; versions are unique.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}

	var out []migration
	seen := map[int64]string{}
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		if !ok || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration %s: name must be <version>_<words>.sql", name)
		}
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: bad version %q", name, num)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, name, v)
		}
		seen[v] = name

		body, err := migrationFS.ReadFile("migrations/" + name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		out = append(out, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// ddl replaces the dialect placeholders of a migration. It is the only
// place where the two dialects get different SQL.
func (db *DB) ddl(s string) string {
	id := "INTEGER PRIMARY KEY AUTOINCREMENT"
	if db.dialect == DialectPostgres {
		id = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
	}
	return strings.ReplaceAll(s, "{{autoid}}", id)
}

// migrate applies every migration not yet recorded in schema_migrations,
// each in its own transaction. The version row is inserted first, so two
// processes starting at once do not both apply a migration: the second
// waits on the first's row and then finds it taken.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}

	// On PostgreSQL two replicas creating the table at the same moment can
	// collide on the catalog's unique index even with IF NOT EXISTS; the
	// loser finds the table made by the winner on its second try.
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    BIGINT PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at BIGINT NOT NULL
	)`
	if _, err := db.w.ExecContext(ctx, create); err != nil {
		if !isCatalogCollision(err) {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		if _, err := db.w.ExecContext(ctx, create); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
	}

	for _, m := range ms {
		if err := db.apply(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) apply(ctx context.Context, m migration) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at)
			VALUES ($1, $2, $3) ON CONFLICT (version) DO NOTHING`,
			m.version, m.name, ms(time.Now()))
		if err != nil {
			return fmt.Errorf("record migration %s: %w", m.name, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("record migration %s: %w", m.name, err)
		} else if n == 0 {
			return nil
		}

		if _, err := tx.ExecContext(ctx, db.ddl(m.sql)); err != nil {
			return fmt.Errorf("apply migration %s: %w", m.name, err)
		}
		return nil
	})
}

// Migrations returns the versions recorded as applied, in order, so that
// tests and health pages can show the schema level.
func (db *DB) Migrations(ctx context.Context) ([]int64, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	defer rows.Close()

	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("list migrations: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	return out, nil
}

// tx runs fn in a write transaction, committing when it returns nil and
// rolling back otherwise.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}

	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}

	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// ms stores a time as unix milliseconds; the zero time is 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS reads a unix-millisecond column back as a UTC time; 0 is the zero
// time.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// isUnique reports whether err is a unique or primary key violation.
// isCatalogCollision reports whether PostgreSQL refused a CREATE ... IF NOT
// EXISTS because another session created the same object at that moment:
// it answers with a unique violation on its catalog, "type already exists"
// or "relation already exists", depending on where the race is lost.
func isCatalogCollision(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505", "42710", "42P07":
			return true
		}
	}
	return false
}

func isUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	return false
}

// isForeignKey reports whether err is a foreign key violation: the row
// refers to an organisation or tenant that does not exist.
func isForeignKey(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23503"
	}
	return false
}

// rowsOne turns an exec result into ErrNotFound when it changed no row.
func rowsOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// notFound maps sql.ErrNoRows to ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// key is the case-insensitive form of a name or email used for uniqueness.
func key(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}
