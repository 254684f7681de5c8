-- Which node's actor owns a user while a cluster shares this database, and
-- the epoch of that claim (see the storage crate's `fence` module). Every
-- write a user's actor makes in a cluster commits only while the row still
-- holds the epoch the actor claimed. A row lives as long as its user.

CREATE TABLE actor_owners (
    user_id text COLLATE "C" PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    node text NOT NULL,
    epoch bigint NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);
