"""Tables no runtime code writes, and sequence values.

Django's permission and content-type catalogs are written by `migrate` (the
owner); groups are not used (roles are the permission model). Runtime roles
may read them but not write them, so SQL injected on one client's connection
cannot use them as shared storage or vandalise them. Sequences keep USAGE
(inserts need nextval) but lose SELECT; `nextval` itself still shows the
shared counter's position (docs/security.md).
"""

from django.db import migrations

from tenants.operations import RunSQLTemplate

CATALOG_TABLES = "public.auth_group, public.auth_group_permissions, public.auth_permission, public.django_content_type"

FORWARDS = f"""
REVOKE INSERT, UPDATE, DELETE ON {CATALOG_TABLES} FROM {{app}}, {{staff}};
REVOKE SELECT ON ALL SEQUENCES IN SCHEMA public FROM {{app}}, {{staff}}, {{service}};
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON SEQUENCES FROM {{app}}, {{staff}}, {{service}};
"""

BACKWARDS = f"""
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON SEQUENCES TO {{app}}, {{staff}}, {{service}};
GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {{app}}, {{staff}}, {{service}};
GRANT INSERT, UPDATE, DELETE ON {CATALOG_TABLES} TO {{app}}, {{staff}};
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0012_shared_rows_read_only")]

    operations = [RunSQLTemplate(FORWARDS, BACKWARDS)]
