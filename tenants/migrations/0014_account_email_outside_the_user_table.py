"""Keys unique across clients (sign-in emails, client slugs) are enforced in
`app.global_key`, not by indexes on the tenant tables.

Any index on a tenant table that does not start with the tenant key leaks
through `EXPLAIN ANALYZE`: a range condition on the indexed column becomes the
index condition, RLS removes the other clients' rows afterwards, and "Rows
Removed by Filter" counts them, so SQL on the app role could read other
clients' users' emails, or the list of clients, character by character.
`app.global_key` (kind, value -> row) is owned by the owner role and nobody
else may read it, so nobody can EXPLAIN it either; a SECURITY DEFINER trigger
keeps it in step with the tenant tables, and the sign-in lookup reads it.

The slug's unique constraint stays in Django's model state (forms and
`validate_unique` still check it, as staff, who see every client); only the
database index goes.
"""

from django.db import migrations

from tenants.operations import RunSQLTemplate

# (table, kind, column)
GLOBAL_KEYS = (("tenants_user", "email", "email"), ("tenants_client", "client_slug", "slug"))

FORWARDS = """
CREATE TABLE app.global_key (
    kind text NOT NULL,
    value text NOT NULL,
    row_id bigint NOT NULL,
    PRIMARY KEY (kind, value),
    UNIQUE (kind, row_id)
);
REVOKE ALL ON app.global_key FROM PUBLIC;

CREATE FUNCTION app.sync_global_key() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $fn$
    DECLARE
        kind text := TG_ARGV[0];
        new_value text;
        old_value text;
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            DELETE FROM app.global_key g WHERE g.kind = TG_ARGV[0];
            RETURN NULL;
        END IF;
        IF TG_OP = 'UPDATE' AND NEW.id IS DISTINCT FROM OLD.id THEN
            RAISE EXCEPTION 'a row''s id cannot change' USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            new_value := lower(to_jsonb(NEW) ->> TG_ARGV[1]);
        END IF;
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            old_value := lower(to_jsonb(OLD) ->> TG_ARGV[1]);
        END IF;
        IF TG_OP = 'DELETE' THEN
            DELETE FROM app.global_key g WHERE g.kind = TG_ARGV[0] AND g.row_id = OLD.id;
        ELSIF TG_OP = 'INSERT' THEN
            INSERT INTO app.global_key (kind, value, row_id) VALUES (kind, new_value, NEW.id);
        ELSIF new_value IS DISTINCT FROM old_value THEN
            UPDATE app.global_key g SET value = new_value WHERE g.kind = TG_ARGV[0] AND g.row_id = OLD.id;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'no global key for this row' USING ERRCODE = 'no_data_found';
            END IF;
        END IF;
        RETURN NULL;
    EXCEPTION WHEN unique_violation THEN
        -- No DETAIL: the message must not echo whose the value is.
        RAISE EXCEPTION 'this % is already taken', replace(kind, '_', ' ') USING ERRCODE = 'unique_violation';
    END
    $fn$;
REVOKE ALL ON FUNCTION app.sync_global_key() FROM PUBLIC;

-- The owner is subject to RLS (FORCE); read every row once to fill the table.
ALTER TABLE public.tenants_user NO FORCE ROW LEVEL SECURITY;
ALTER TABLE public.tenants_client NO FORCE ROW LEVEL SECURITY;
INSERT INTO app.global_key (kind, value, row_id) SELECT 'email', lower(email), id FROM public.tenants_user;
INSERT INTO app.global_key (kind, value, row_id) SELECT 'client_slug', lower(slug), id FROM public.tenants_client;
ALTER TABLE public.tenants_user FORCE ROW LEVEL SECURITY;
ALTER TABLE public.tenants_client FORCE ROW LEVEL SECURITY;
""" + "".join(
    f"""
CREATE TRIGGER sync_global_key AFTER INSERT OR UPDATE OF {column} OR DELETE ON public.{table}
    FOR EACH ROW EXECUTE FUNCTION app.sync_global_key('{kind}', '{column}');
CREATE TRIGGER sync_global_key_truncate AFTER TRUNCATE ON public.{table}
    FOR EACH STATEMENT EXECUTE FUNCTION app.sync_global_key('{kind}', '{column}');
"""
    for table, kind, column in GLOBAL_KEYS
).replace("{", "{{").replace("}", "}}") + """
ALTER TABLE public.tenants_client DROP CONSTRAINT tenants_client_slug_key;
DROP INDEX public.tenants_client_slug_8a691f8f_like;

CREATE OR REPLACE FUNCTION app.auth_identity_by_email(p_email text)
    RETURNS TABLE (user_id bigint, client_id bigint, is_staff boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $fn$
        SELECT u.id, u.client_id, u.role IN ('super_admin', 'admin')
        FROM app.global_key g JOIN public.tenants_user u ON u.id = g.row_id
        WHERE g.kind = 'email' AND g.value = lower(p_email) AND u.is_active
    $fn$;
"""

BACKWARDS = """
CREATE OR REPLACE FUNCTION app.auth_identity_by_email(p_email text)
    RETURNS TABLE (user_id bigint, client_id bigint, is_staff boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $fn$
        SELECT u.id, u.client_id, u.role IN ('super_admin', 'admin')
        FROM public.tenants_user u
        WHERE lower(u.email) = lower(p_email) AND u.is_active
    $fn$;
ALTER TABLE public.tenants_client ADD CONSTRAINT tenants_client_slug_key UNIQUE (slug);
CREATE INDEX tenants_client_slug_8a691f8f_like ON public.tenants_client (slug varchar_pattern_ops);
""" + "".join(
    f"""
DROP TRIGGER IF EXISTS sync_global_key_truncate ON public.{table};
DROP TRIGGER IF EXISTS sync_global_key ON public.{table};
"""
    for table, _, _ in GLOBAL_KEYS
) + """
DROP FUNCTION app.sync_global_key();
DROP TABLE app.global_key;
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0013_no_writes_to_catalog_tables")]

    operations = [
        RunSQLTemplate(FORWARDS, BACKWARDS),
        migrations.RemoveConstraint(model_name="user", name="tenants_user_email_ci_uniq"),
    ]
