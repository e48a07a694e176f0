"""The sign-in lookup by email answers only with a proof.

`app.auth_identity_by_email(email, proof)` returns the account only when
`proof` is the HMAC, under a tenant-context key, of `email:<email>` bound to
this backend and this transaction (tenants/context_proof.py), the same
binding as the tenant context's. The application holds the key; SQL injected
on the app connection does not, so it can no longer ask whether an email of
its choosing has an account and whose.
"""

from django.db import migrations

from tenants.operations import role

PROVEN_LOOKUP = """
DROP FUNCTION app.auth_identity_by_email(text);
CREATE FUNCTION app.auth_identity_by_email(p_email text, p_proof text)
    RETURNS TABLE (user_id bigint, client_id bigint, is_staff boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $fn$
    DECLARE
        message bytea := convert_to(
            'email:' || p_email || ':' || pg_backend_pid() || ':'
                || ((extract(epoch FROM transaction_timestamp()) * 1000000)::bigint)::text,
            'UTF8');
    BEGIN
        IF p_email IS NULL OR p_proof IS NULL OR NOT EXISTS (
            SELECT 1 FROM app.tenant_context_key k
            WHERE (k.expires_at IS NULL OR k.expires_at > now())
              AND encode(%(ext)s.hmac(message, k.secret, 'sha256'), 'hex') = p_proof
        ) THEN
            -- An error, not an empty answer: an application whose key the
            -- database no longer accepts must not mistake it for "no account".
            RAISE EXCEPTION 'the email lookup needs the application''s proof' USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN QUERY
            SELECT u.id, u.client_id, u.role IN ('super_admin', 'admin')
            FROM app.global_key g JOIN public.tenants_user u ON u.id = g.row_id
            WHERE g.kind = 'email' AND g.value = lower(p_email) AND u.is_active;
    END
    $fn$;
REVOKE ALL ON FUNCTION app.auth_identity_by_email(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.auth_identity_by_email(text, text) TO %(app)s, %(staff)s;
"""

UNPROVEN_LOOKUP = """
DROP FUNCTION app.auth_identity_by_email(text, text);
CREATE FUNCTION app.auth_identity_by_email(p_email text)
    RETURNS TABLE (user_id bigint, client_id bigint, is_staff boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $fn$
        SELECT u.id, u.client_id, u.role IN ('super_admin', 'admin')
        FROM app.global_key g JOIN public.tenants_user u ON u.id = g.row_id
        WHERE g.kind = 'email' AND g.value = lower(p_email) AND u.is_active
    $fn$;
REVOKE ALL ON FUNCTION app.auth_identity_by_email(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.auth_identity_by_email(text) TO %(app)s, %(staff)s;
"""


def _execute(schema_editor, sql: str) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pgcrypto'"
        )
        extension_schema = cursor.fetchone()[0]
    schema_editor.execute(
        sql % {"ext": schema_editor.quote_name(extension_schema), "app": role("app"), "staff": role("staff")},
        params=None,
    )


def forwards(apps, schema_editor):
    _execute(schema_editor, PROVEN_LOOKUP)


def backwards(apps, schema_editor):
    _execute(schema_editor, UNPROVEN_LOOKUP)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0015_database_time_zone_utc")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
