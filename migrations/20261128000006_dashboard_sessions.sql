-- Sessions of the operators' dashboard, shared by every replica. The session
-- id itself lives only in the browser's HttpOnly cookie; the table keeps its
-- SHA-256, so reading this table does not let anyone log in.
CREATE TABLE dashboard_sessions (
    id_sha256  text PRIMARY KEY,
    token_name text NOT NULL,
    role       text NOT NULL CHECK (role IN ('intake', 'operator', 'auditor', 'admin')),
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX dashboard_sessions_expires_idx ON dashboard_sessions (expires_at);
