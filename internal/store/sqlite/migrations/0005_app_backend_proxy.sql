-- A forward proxy between the connector and the application's backend.
ALTER TABLE applications ADD COLUMN backend_proxy TEXT NOT NULL DEFAULT '';
