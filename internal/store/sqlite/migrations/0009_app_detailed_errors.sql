-- An application may show its detailed error pages (internal URL, the
-- connector's account of a failure) to anonymous users, for its developers.
ALTER TABLE applications ADD COLUMN detailed_errors INTEGER NOT NULL DEFAULT 0;
