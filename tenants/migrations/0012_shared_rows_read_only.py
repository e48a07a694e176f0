"""First-party OAuth applications (no client) are readable by every client's
requests but writable by none: the app policy used to be one FOR ALL policy
whose USING admitted NULL-keyed rows, which let the app role UPDATE or
DELETE the shared sign-in application. Now the app policy covers only the
client's own rows and a separate SELECT-only policy admits the shared ones
(the shape `EnableTenantRLS(shared_when_null=True)` creates)."""

from django.db import migrations

from tenants.operations import RunSQLTemplate

FORWARDS = """
DROP POLICY IF EXISTS shared_read ON tenants_oauthapplication;
DROP POLICY tenant_isolation ON tenants_oauthapplication;
CREATE POLICY tenant_isolation ON tenants_oauthapplication AS PERMISSIVE FOR ALL TO {app}
    USING (tenant_id = (SELECT app.current_client_id())) WITH CHECK (tenant_id = (SELECT app.current_client_id()));
CREATE POLICY shared_read ON tenants_oauthapplication AS PERMISSIVE FOR SELECT TO {app}
    USING (tenant_id IS NULL);
"""

BACKWARDS = """
DROP POLICY shared_read ON tenants_oauthapplication;
DROP POLICY tenant_isolation ON tenants_oauthapplication;
CREATE POLICY tenant_isolation ON tenants_oauthapplication AS PERMISSIVE FOR ALL TO {app}
    USING ((tenant_id = (SELECT app.current_client_id())) OR (tenant_id IS NULL))
    WITH CHECK (tenant_id = (SELECT app.current_client_id()));
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0011_no_lookup_by_user_id")]

    operations = [RunSQLTemplate(FORWARDS, BACKWARDS)]
