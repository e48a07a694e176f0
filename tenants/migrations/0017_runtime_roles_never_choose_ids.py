"""Runtime roles never choose or change a row's id, and the app role writes
only the user columns sign-in needs.

Ids come from one counter per table, shared by every client. A role that may
write `id` could insert rows at the ids other clients' next rows will get
(every insert of theirs then fails with a duplicate key) or probe whether an
id exists (`ON CONFLICT`). `app.restrict_id_writes(table)` replaces the app
and staff roles' table-wide INSERT and UPDATE with the same grants on every
column except a sequence- or identity-backed primary key; `EnableTenantRLS`
runs it for every new tenant table and `check_rls` reports any table where
a runtime role may still write such an id.

The app role keeps SELECT on `tenants_user` but may UPDATE only `password`
(hash upgrades), `last_login` and `session_epoch`: no client-facing code
creates or edits users, and writing an email would let SQL on the app role
test or squat other clients' sign-in emails through their uniqueness.
"""

from django.db import migrations

from tenants.operations import RunSQLTemplate

FORWARDS = """
CREATE FUNCTION app.restrict_id_writes(target regclass) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $fn$
    DECLARE
        writable text;
        runtime_role text;
        privilege text;
    BEGIN
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO writable
        FROM pg_attribute a
        WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
          AND NOT EXISTS (
              SELECT 1 FROM pg_index x
              WHERE x.indrelid = target AND x.indisprimary AND a.attnum = ANY (x.indkey)
                AND (a.attidentity <> '' OR EXISTS (SELECT 1 FROM pg_attrdef d WHERE d.adrelid = a.attrelid
                                                        AND d.adnum = a.attnum
                                                        AND pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%'))
          );
        FOREACH runtime_role IN ARRAY ARRAY['{app}', '{staff}'] LOOP
            FOREACH privilege IN ARRAY ARRAY['INSERT', 'UPDATE'] LOOP
                IF has_table_privilege(runtime_role, target, privilege) THEN
                    EXECUTE format('REVOKE %s ON %s FROM %I', privilege, target, runtime_role);
                    EXECUTE format('GRANT %s (%s) ON %s TO %I', privilege, writable, target, runtime_role);
                END IF;
            END LOOP;
        END LOOP;
    END
    $fn$;
REVOKE ALL ON FUNCTION app.restrict_id_writes(regclass) FROM PUBLIC;

DO $do$
DECLARE
    t regclass;
BEGIN
    FOR t IN
        SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
    LOOP
        PERFORM app.restrict_id_writes(t);
    END LOOP;
END
$do$;

REVOKE INSERT, UPDATE, DELETE ON public.tenants_user FROM {app};
GRANT UPDATE (password, last_login, session_epoch) ON public.tenants_user TO {app};
"""

BACKWARDS = """
REVOKE UPDATE (password, last_login, session_epoch) ON public.tenants_user FROM {app};
GRANT SELECT, INSERT, UPDATE, DELETE ON public.tenants_user TO {app};
DO $do$
DECLARE
    t regclass;
    runtime_role text;
BEGIN
    FOR t IN
        SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
          AND c.relname NOT IN ('tenants_auditevent', 'tenants_client', 'django_admin_log', 'auth_group',
                                'auth_group_permissions', 'auth_permission', 'django_content_type')
    LOOP
        FOREACH runtime_role IN ARRAY ARRAY['{app}', '{staff}'] LOOP
            IF has_any_column_privilege(runtime_role, t, 'INSERT') THEN
                EXECUTE format('GRANT INSERT, UPDATE ON %s TO %I', t, runtime_role);
            END IF;
        END LOOP;
    END LOOP;
END
$do$;
DROP FUNCTION app.restrict_id_writes(regclass);
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0016_email_lookup_needs_a_proof")]

    operations = [RunSQLTemplate(FORWARDS, BACKWARDS)]
