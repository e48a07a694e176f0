"""Sessions carry their account's client (tenants/auth.py), so the lookup by
user id is gone: user ids are guessable, and the app role could have listed
every client's users through it. The email lookup, which sign-in needs before
any context exists, runs on the app connection again (migration 0007 had
moved both to the service role, which no web request may use)."""

from django.db import migrations

from tenants.operations import RunSQLTemplate

FORWARDS = """
DROP FUNCTION app.auth_identity_by_id(bigint);
REVOKE EXECUTE ON FUNCTION app.auth_identity_by_email(text) FROM {service};
GRANT EXECUTE ON FUNCTION app.auth_identity_by_email(text) TO {app}, {staff};
"""

BACKWARDS = """
REVOKE EXECUTE ON FUNCTION app.auth_identity_by_email(text) FROM {app}, {staff};
GRANT EXECUTE ON FUNCTION app.auth_identity_by_email(text) TO {service};
CREATE FUNCTION app.auth_identity_by_id(p_user_id bigint)
    RETURNS TABLE (user_id bigint, client_id bigint, is_staff boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $fn$
        SELECT u.id, u.client_id, u.role IN ('super_admin', 'admin')
        FROM public.tenants_user u
        WHERE u.id = p_user_id AND u.is_active
    $fn$;
REVOKE ALL ON FUNCTION app.auth_identity_by_id(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.auth_identity_by_id(bigint) TO {service};
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0010_user_session_epoch")]

    operations = [RunSQLTemplate(FORWARDS, BACKWARDS)]
