-- Mailed tokens (email verification, password reset) and the mail outbox.

CREATE TABLE email_tokens (
    hash bytea NOT NULL,
    expires_at bigint NOT NULL,
    record bytea NOT NULL,
    CONSTRAINT email_tokens_pkey PRIMARY KEY (hash)
);
CREATE INDEX email_tokens_expires_at_idx ON email_tokens (expires_at);

-- Ids sort by creation, so ORDER BY id is oldest first.
CREATE TABLE mail_outbox (
    id text COLLATE "C" NOT NULL,
    next_attempt_at bigint NOT NULL,
    record bytea NOT NULL,
    CONSTRAINT mail_outbox_pkey PRIMARY KEY (id)
);
CREATE INDEX mail_outbox_next_attempt_at_idx ON mail_outbox (next_attempt_at);
