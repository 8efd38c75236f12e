-- The first schema of OneSync's store. Times are unix milliseconds (BIGINT,
-- 0 for "never"); flags are INTEGER 0 or 1 so that SQLite and PostgreSQL
-- read them the same way. {{autoid}} is the one dialect-specific piece: an
-- auto-assigned BIGINT primary key.

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL UNIQUE,
    pbx_org     TEXT NOT NULL DEFAULT '',
    stage       TEXT NOT NULL DEFAULT '',
    stage_since BIGINT NOT NULL DEFAULT 0,
    last_error  TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    profile     TEXT NOT NULL DEFAULT ''
);

CREATE INDEX orgs_created_at ON orgs (created_at);

CREATE TABLE admins (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    phone         TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE INDEX admins_org_id ON admins (org_id);

CREATE TABLE staff (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    account_id TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE consent_requests (
    state      TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    session_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX consent_requests_expires_at ON consent_requests (expires_at);

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    state      TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    delta_link TEXT NOT NULL DEFAULT '',
    bound_at   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX tenants_org_id ON tenants (org_id);

CREATE TABLE links (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL,
    org_id        TEXT NOT NULL,
    extension     TEXT NOT NULL,
    display_name  TEXT NOT NULL DEFAULT '',
    email         TEXT NOT NULL DEFAULT '',
    matched_by    TEXT NOT NULL DEFAULT '',
    broken        INTEGER NOT NULL DEFAULT 0,
    broken_reason TEXT NOT NULL DEFAULT '',
    availability  TEXT NOT NULL DEFAULT '',
    activity      TEXT NOT NULL DEFAULT '',
    line_state    TEXT NOT NULL DEFAULT '',
    seq           BIGINT NOT NULL DEFAULT 0,
    changed_at    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE INDEX links_org_id ON links (org_id, extension);
CREATE INDEX links_tenant_extension ON links (tenant_id, extension);

CREATE TABLE extensions (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    number TEXT NOT NULL,
    email  TEXT NOT NULL DEFAULT '',
    name   TEXT NOT NULL DEFAULT '',
    phone  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (org_id, number)
);

CREATE TABLE audit (
    id     {{autoid}},
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    org_id TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);

CREATE INDEX audit_org_at ON audit (org_id, at);
