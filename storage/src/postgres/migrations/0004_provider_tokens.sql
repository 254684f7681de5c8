-- The tokens a provider issued for a linked account, sealed by the engine
-- (the record holds only ciphertexts). A row lives as long as its account:
-- unlinking it or deleting its user removes the row in the same statement.

CREATE TABLE provider_tokens (
    provider text COLLATE "C" NOT NULL,
    subject text COLLATE "C" NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    record bytea NOT NULL,
    CONSTRAINT provider_tokens_pkey PRIMARY KEY (provider, subject),
    CONSTRAINT provider_tokens_account_fkey FOREIGN KEY (provider, subject)
        REFERENCES accounts (provider, subject) ON DELETE CASCADE
);
