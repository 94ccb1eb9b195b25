-- The daemon runs as a role that may read the audit log and append to it,
-- nothing else: `lapor-bridge migrate` creates lapor_bridge_runtime and
-- grants it everything in the schema except writes to audit_log. The append
-- functions therefore run with their owner's rights (SECURITY DEFINER) and a
-- fixed search_path, so that no object of the caller's can stand in for the
-- ones they use; only the roles granted EXECUTE may call them.
ALTER FUNCTION audit_append(timestamptz, text, text, text, jsonb, jsonb)
    SECURITY DEFINER SET search_path = lapor_bridge, pg_temp;
ALTER FUNCTION audit_append_many(timestamptz[], text[], text[], text[], jsonb[], jsonb[])
    SECURITY DEFINER SET search_path = lapor_bridge, pg_temp;
REVOKE EXECUTE ON FUNCTION audit_append(timestamptz, text, text, text, jsonb, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION audit_append_many(timestamptz[], text[], text[], text[], jsonb[], jsonb[]) FROM PUBLIC;
