-- The first schema: one table per concept. Key columns are real columns (so
-- they can be indexed, constrained and conditioned on); the record itself is
-- the codec's bytes (a schema-version byte and bincode). Text keys use the "C"
-- collation: byte order, as sled's keys sort, and prefix LIKE can use the index.

CREATE TABLE users (
    id text COLLATE "C" NOT NULL,
    email text COLLATE "C",
    record bytea NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE accounts (
    provider text COLLATE "C" NOT NULL,
    subject text COLLATE "C" NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    CONSTRAINT accounts_pkey PRIMARY KEY (provider, subject)
);

CREATE TABLE sessions (
    id text COLLATE "C" NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    expires_at bigint NOT NULL,
    absolute_expires_at bigint NOT NULL,
    record bytea NOT NULL,
    CONSTRAINT sessions_pkey PRIMARY KEY (id)
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id, id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
CREATE INDEX sessions_absolute_expires_at_idx ON sessions (absolute_expires_at);

-- One refresh family per dashboard session; a revoked family stays as a tombstone.
CREATE TABLE families (
    session_id text COLLATE "C" NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    generation bigint NOT NULL,
    revoked boolean NOT NULL,
    idle_expires_at bigint NOT NULL,
    absolute_expires_at bigint NOT NULL,
    record bytea NOT NULL,
    CONSTRAINT families_pkey PRIMARY KEY (session_id)
) WITH (fillfactor = 70);
-- No index on the expiry columns: every rotation changes them, and without
-- such an index the update can stay on its page (a HOT update, no index
-- writes). The sweep reads the whole table, as it does on sled.

CREATE TABLE retired_refresh_tokens (
    hash bytea NOT NULL,
    session_id text COLLATE "C" NOT NULL,
    CONSTRAINT retired_refresh_tokens_pkey PRIMARY KEY (hash)
);
-- Only the hash is looked up; the sweep's anti-join reads the whole table.

CREATE TABLE oauth_states (
    key bytea NOT NULL,
    expires_at bigint NOT NULL,
    link_session_id text,
    record bytea NOT NULL,
    CONSTRAINT oauth_states_pkey PRIMARY KEY (key)
);
CREATE INDEX oauth_states_expires_at_idx ON oauth_states (expires_at);

CREATE TABLE signing_keys (
    kid text COLLATE "C" NOT NULL,
    record bytea NOT NULL,
    CONSTRAINT signing_keys_pkey PRIMARY KEY (kid)
);

CREATE TABLE audit (
    id bigserial NOT NULL,
    at bigint NOT NULL,
    record bytea NOT NULL,
    CONSTRAINT audit_pkey PRIMARY KEY (id)
);
