-- Network applications (private access): an application's type ('http', a
-- web application; 'tcp' or 'udp', a network application) and the internal
-- addresses (segments) of a network application, a JSON array of strings.
-- A network application has no external host: since external_host is
-- NOT NULL UNIQUE, its row keeps '#' || id there, never a DNS name, which
-- the store reads back as no host.
ALTER TABLE applications ADD COLUMN type TEXT NOT NULL DEFAULT 'http';
ALTER TABLE applications ADD COLUMN internal_addresses TEXT NOT NULL DEFAULT '[]';
