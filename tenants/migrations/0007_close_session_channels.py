"""Close what SQL injected on a pooled app connection could leave behind, or
learn, across clients.

- Temporary objects: a temporary table, view or function lives as long as the
  connection, and `pg_temp` is searched before `public`. SQL injected in
  client A's request could create `pg_temp.tenants_user` and the next request
  on that connection, client B's with a valid proof, would read and write it.
  No role may create temporary objects in this database (PUBLIC has the
  privilege by default; `check_rls` verifies nobody does).
- The login lookups: `app.auth_identity_by_email/by_id` answer for any email
  or id, so the app role could enumerate every client's users. This moved
  them to the service role; migration 0011 then removed the lookup by id and
  gave the email lookup back to the app role (no web request may use the
  service role).
- `app.current_client_id()` binds its proof to the backend pid, which a
  parallel worker does not share: it is PARALLEL RESTRICTED, so it runs in
  the leader and the rest of a plan may still run in parallel.
"""

from django.db import migrations

from tenants.operations import RunSQLTemplate

FORWARDS = """
DO $do$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC, {app}, {staff}, {service}', current_database());
END
$do$;

REVOKE EXECUTE ON FUNCTION app.auth_identity_by_email(text), app.auth_identity_by_id(bigint) FROM {app}, {staff};
GRANT EXECUTE ON FUNCTION app.auth_identity_by_email(text), app.auth_identity_by_id(bigint) TO {service};

ALTER FUNCTION app.current_client_id() PARALLEL RESTRICTED;
"""

BACKWARDS = """
ALTER FUNCTION app.current_client_id() PARALLEL UNSAFE;

REVOKE EXECUTE ON FUNCTION app.auth_identity_by_email(text), app.auth_identity_by_id(bigint) FROM {service};
GRANT EXECUTE ON FUNCTION app.auth_identity_by_email(text), app.auth_identity_by_id(bigint) TO {app}, {staff};

DO $do$
BEGIN
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO PUBLIC', current_database());
END
$do$;
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0006_same_client_application")]

    operations = [RunSQLTemplate(FORWARDS, BACKWARDS)]
