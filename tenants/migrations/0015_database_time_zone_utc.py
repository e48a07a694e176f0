"""Sessions default to UTC, the time zone Django uses, so neither a new
connection nor one reset with `DISCARD ALL` after a request
(tenants.context.reset_runtime_connections) needs a `SET TIME ZONE` round
trip."""

from django.db import migrations

FORWARDS = """
DO $do$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET TimeZone = %L', current_database(), 'UTC');
END
$do$;
"""

BACKWARDS = """
DO $do$
BEGIN
    EXECUTE format('ALTER DATABASE %I RESET TimeZone', current_database());
END
$do$;
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0014_account_email_outside_the_user_table")]

    operations = [migrations.RunSQL(FORWARDS, BACKWARDS)]
