"""Runtime roles get only the rights their code uses on three tables.

- `tenants_auditevent`: the app role writes events and reads its client's,
  but cannot rewrite or delete them (the log must outlive an injection that
  wants to hide itself). Staff keep DELETE: deleting a client cascades.
- `tenants_client`: the app role reads its own client and may change only the
  name (the profile endpoint); status and products are staff decisions.
- `django_admin_log`: not written (the admin records AuditEvents); the app
  role cannot touch it and staff may only read it (the admin's history page).
"""

from django.db import migrations

from tenants.operations import RunSQLTemplate

FORWARDS = """
REVOKE UPDATE, DELETE ON public.tenants_auditevent FROM {app};
REVOKE INSERT, UPDATE, DELETE ON public.tenants_client FROM {app};
GRANT UPDATE (name) ON public.tenants_client TO {app};
REVOKE ALL ON public.django_admin_log FROM {app};
REVOKE INSERT, UPDATE, DELETE ON public.django_admin_log FROM {staff};
"""

BACKWARDS = """
GRANT INSERT, UPDATE, DELETE ON public.django_admin_log TO {staff};
GRANT SELECT, INSERT, UPDATE, DELETE ON public.django_admin_log TO {app};
REVOKE UPDATE (name) ON public.tenants_client FROM {app};
GRANT INSERT, UPDATE, DELETE ON public.tenants_client TO {app};
GRANT UPDATE, DELETE ON public.tenants_auditevent TO {app};
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0008_task_queue_rls")]

    operations = [RunSQLTemplate(FORWARDS, BACKWARDS)]
