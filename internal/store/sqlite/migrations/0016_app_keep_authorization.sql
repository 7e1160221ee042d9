-- A pre-authenticated application may receive the access token a client
-- signed in with (Authorization: Bearer), which the edge otherwise removes.
ALTER TABLE applications ADD COLUMN keep_authorization INTEGER NOT NULL DEFAULT 0;
