-- Grants of the OAuth 2.1 server: authorization codes and device grants,
-- keyed by the SHA-256 of the code (or device code) and kept until they expire
-- (ten minutes at most). A device grant's user code (its SHA-256) is unique
-- while its row is stored; codes have none (NULLs never conflict).

CREATE TABLE oauth2_grants (
    key bytea NOT NULL,
    expires_at bigint NOT NULL,
    user_code bytea,
    record bytea NOT NULL,
    CONSTRAINT oauth2_grants_pkey PRIMARY KEY (key),
    CONSTRAINT oauth2_grants_user_code_key UNIQUE (user_code)
);
CREATE INDEX oauth2_grants_expires_at_idx ON oauth2_grants (expires_at);
