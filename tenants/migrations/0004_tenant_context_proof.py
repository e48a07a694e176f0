"""Make the tenant context unforgeable from SQL: `app.current_client_id()`
returns the client id only with a valid HMAC proof (tenants/context_proof.py).

The verification keys live in `app.tenant_context_key`, owned by the owner
role and readable by nobody else; the function that reads them is SECURITY
DEFINER with a fixed search_path and EXECUTE granted to the app role only
(the only role whose policies call it). `migrate` installs the configured key
afterwards (tenants.signals), so no secret is ever written into a migration.
"""

from django.db import migrations
from django.db.migrations.operations.base import Operation

from tenants.operations import role

VERIFIED_FUNCTION = """
CREATE OR REPLACE FUNCTION app.current_client_id() RETURNS bigint
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $fn$
DECLARE
    claimed text := nullif(current_setting('app.client_id', true), '');
    presented text := nullif(current_setting('app.client_proof', true), '');
    message bytea;
BEGIN
    IF claimed IS NULL OR presented IS NULL OR claimed !~ '^[1-9][0-9]{0,17}$' THEN
        RETURN NULL;
    END IF;
    message := convert_to(
        claimed || ':' || pg_backend_pid() || ':'
            || ((extract(epoch FROM transaction_timestamp()) * 1000000)::bigint)::text,
        'UTF8');
    IF EXISTS (
        SELECT 1 FROM app.tenant_context_key k
        WHERE (k.expires_at IS NULL OR k.expires_at > now())
          AND encode(%(ext)s.hmac(message, k.secret, 'sha256'), 'hex') = presented
    ) THEN
        RETURN claimed::bigint;
    END IF;
    RETURN NULL;
END
$fn$;
"""

PLAIN_FUNCTION = """
CREATE OR REPLACE FUNCTION app.current_client_id() RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $fn$ SELECT nullif(current_setting('app.client_id', true), '')::bigint $fn$;
ALTER FUNCTION app.current_client_id() RESET ALL;
ALTER FUNCTION app.current_client_id() SECURITY INVOKER;
"""


class InstallTenantContextProof(Operation):
    reduces_to_sql = False
    reversible = True

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        execute = schema_editor.execute
        execute("CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA app", params=None)
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                "WHERE e.extname = 'pgcrypto'"
            )
            extension_schema = cursor.fetchone()[0]
        runtime = f"{role('app')}, {role('staff')}, {role('service')}"
        execute(
            """
            CREATE TABLE app.tenant_context_key (
                id serial PRIMARY KEY,
                fingerprint text NOT NULL UNIQUE,
                secret bytea NOT NULL CHECK (octet_length(secret) >= 32),
                created_at timestamptz NOT NULL DEFAULT now(),
                expires_at timestamptz
            )
            """,
            params=None,
        )
        execute(f"REVOKE ALL ON TABLE app.tenant_context_key FROM PUBLIC, {runtime}", params=None)
        execute(f"REVOKE ALL ON SEQUENCE app.tenant_context_key_id_seq FROM PUBLIC, {runtime}", params=None)
        quoted = schema_editor.quote_name(extension_schema)
        execute(VERIFIED_FUNCTION % {"ext": quoted}, params=None)
        execute(f"REVOKE ALL ON FUNCTION app.current_client_id() FROM PUBLIC, {runtime}", params=None)
        execute(f"GRANT EXECUTE ON FUNCTION app.current_client_id() TO {role('app')}", params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        execute = schema_editor.execute
        execute(PLAIN_FUNCTION, params=None)
        execute(
            f"GRANT EXECUTE ON FUNCTION app.current_client_id() TO {role('app')}, {role('staff')}, {role('service')}",
            params=None,
        )
        execute("DROP TABLE IF EXISTS app.tenant_context_key", params=None)
        # Only the copy this migration put in schema `app`; one installed
        # elsewhere by an administrator stays.
        execute(
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pgcrypto' AND n.nspname = 'app') THEN DROP EXTENSION pgcrypto; END IF; END $$",
            params=None,
        )

    def describe(self):
        return "Require an HMAC proof for the tenant context"


class Migration(migrations.Migration):
    dependencies = [("tenants", "0003_oauth_tables")]

    operations = [InstallTenantContextProof()]
