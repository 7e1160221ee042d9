-- Certificate renewal: the serial a connector renewed from stays accepted
-- until the connector has connected with its new certificate.
ALTER TABLE connectors ADD COLUMN previous_serial TEXT NOT NULL DEFAULT '';
