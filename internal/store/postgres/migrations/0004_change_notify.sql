-- Several cloud instances share this database: each caches the routing
-- table (applications, groups, users, the directory, settings, identity
-- providers) and the sessions it has seen. Every change to those tables
-- is announced with NOTIFY on the channel sallyport_changes, whoever
-- makes it (an instance, an operator command, a hand-written UPDATE): a
-- trigger per table, so no write path can forget it. The payload is the
-- table's name; for sessions ended before their expiry it is
-- "sessions:ID,ID,..." (or "sessions:*" when the ids would not fit in a
-- notification).
-- Notifications are sent at commit, once per distinct payload.

CREATE FUNCTION sallyport_notify_table() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sallyport_changes', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE FUNCTION sallyport_notify_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids TEXT;
BEGIN
    -- Sessions swept after they expired concern no cache.
    SELECT string_agg(id, ',') INTO ids FROM gone
        WHERE expires_at > (extract(epoch FROM clock_timestamp()) * 1000000000)::BIGINT;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    IF length(ids) > 7000 THEN
        ids := '*';
    END IF;
    PERFORM pg_notify('sallyport_changes', 'sessions:' || ids);
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_notify AFTER INSERT OR UPDATE OR DELETE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION sallyport_notify_table();
CREATE TRIGGER users_notify AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION sallyport_notify_table();
CREATE TRIGGER connector_groups_notify AFTER INSERT OR UPDATE OR DELETE ON connector_groups
    FOR EACH STATEMENT EXECUTE FUNCTION sallyport_notify_table();
CREATE TRIGGER applications_notify AFTER INSERT OR UPDATE OR DELETE ON applications
    FOR EACH STATEMENT EXECUTE FUNCTION sallyport_notify_table();
CREATE TRIGGER user_groups_notify AFTER INSERT OR UPDATE OR DELETE ON user_groups
    FOR EACH STATEMENT EXECUTE FUNCTION sallyport_notify_table();
CREATE TRIGGER user_group_members_notify AFTER INSERT OR UPDATE OR DELETE ON user_group_members
    FOR EACH STATEMENT EXECUTE FUNCTION sallyport_notify_table();
CREATE TRIGGER app_assignments_notify AFTER INSERT OR UPDATE OR DELETE ON app_assignments
    FOR EACH STATEMENT EXECUTE FUNCTION sallyport_notify_table();
CREATE TRIGGER tenant_settings_notify AFTER INSERT OR UPDATE OR DELETE ON tenant_settings
    FOR EACH STATEMENT EXECUTE FUNCTION sallyport_notify_table();
CREATE TRIGGER identity_providers_notify AFTER INSERT OR UPDATE OR DELETE ON identity_providers
    FOR EACH STATEMENT EXECUTE FUNCTION sallyport_notify_table();
-- Connectors: deleted or moved to another group (not their heartbeats,
-- which update last_seen_at every few seconds).
CREATE TRIGGER connectors_notify AFTER DELETE OR UPDATE OF group_id ON connectors
    FOR EACH STATEMENT EXECUTE FUNCTION sallyport_notify_table();
CREATE TRIGGER revocations_notify AFTER INSERT ON revocations
    FOR EACH STATEMENT EXECUTE FUNCTION sallyport_notify_table();
-- Sessions: only their end matters to the others' caches (not a new
-- session, nor a use recorded).
CREATE TRIGGER sessions_notify AFTER DELETE ON sessions
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION sallyport_notify_sessions();
