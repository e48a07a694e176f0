"""The task queue is a tenant table too.

A tenant task carries its client as the keyword argument `tenant_client_id`
(tenants/tasks.py); a generated `client_id` column exposes it to Row Level
Security, so the app role sees and queues only its proven client's tasks
(task names and arguments included) and, with no client, none at all. Tasks
that are not tenant tasks have no client: only staff and the service role see
them. The worker claims and records tasks through the service connection
(the db_worker command, tenants/management/commands/db_worker.py); each
tenant task's body still runs as the app role in its client's context.
"""

from django.db import migrations

from tenants.operations import EnableTenantRLS

QUEUE_TABLE = "django_tasks_database_dbtaskresult"


class EnableQueueRLS(EnableTenantRLS):
    def _table(self, app_label, state):
        return QUEUE_TABLE


class Migration(migrations.Migration):
    dependencies = [("tenants", "0007_close_session_channels")]

    operations = [
        migrations.RunSQL(
            f"""
            ALTER TABLE {QUEUE_TABLE} ADD COLUMN client_id bigint GENERATED ALWAYS AS (
                CASE WHEN jsonb_typeof(args_kwargs -> 'kwargs' -> 'tenant_client_id') = 'number'
                     THEN (args_kwargs -> 'kwargs' ->> 'tenant_client_id')::bigint END
            ) STORED
            """,
            f"ALTER TABLE {QUEUE_TABLE} DROP COLUMN client_id",
        ),
        EnableQueueRLS(model_name="dbtaskresult"),
    ]
