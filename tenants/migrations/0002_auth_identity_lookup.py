"""The narrow path that reads an account before any client context exists
(documented in tenants/auth.py): two SECURITY DEFINER functions that answer
only "whose account is this?" for one exact key, and the policy that lets them
read the user table."""

from django.db import migrations

from tenants.operations import AllowAuthLookup, RunSQLTemplate

FUNCTIONS = """
CREATE FUNCTION app.auth_identity_by_email(p_email text)
    RETURNS TABLE (user_id bigint, client_id bigint, is_staff boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $fn$
        SELECT u.id, u.client_id, u.role IN ('super_admin', 'admin')
        FROM public.tenants_user u
        WHERE lower(u.email) = lower(p_email) AND u.is_active
    $fn$;

CREATE FUNCTION app.auth_identity_by_id(p_user_id bigint)
    RETURNS TABLE (user_id bigint, client_id bigint, is_staff boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $fn$
        SELECT u.id, u.client_id, u.role IN ('super_admin', 'admin')
        FROM public.tenants_user u
        WHERE u.id = p_user_id AND u.is_active
    $fn$;

REVOKE ALL ON FUNCTION app.auth_identity_by_email(text), app.auth_identity_by_id(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.auth_identity_by_email(text), app.auth_identity_by_id(bigint) TO {app}, {staff};
"""

FUNCTIONS_REVERSE = """
DROP FUNCTION IF EXISTS app.auth_identity_by_email(text);
DROP FUNCTION IF EXISTS app.auth_identity_by_id(bigint);
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [
        AllowAuthLookup(model_name="user"),
        RunSQLTemplate(FUNCTIONS, FUNCTIONS_REVERSE),
    ]
