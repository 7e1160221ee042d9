-- Session affinity per application (opt-in cookie that keeps a browser on
-- one connector of the group).
ALTER TABLE applications ADD COLUMN affinity INTEGER NOT NULL DEFAULT 0;
