"""django-tasks-db's worker, with its queue work on the service connection.

The queue is a tenant table (tenants migration 0008): the app role with no
client sees none of it, so the worker claims, records and finishes tasks as
`sagerock_service`, like the other operator processes. A tenant task's body
still runs as `sagerock_app` inside its client's context (tenants/tasks.py);
only tasks that staff or the service role queued without a client run with
the service role's rights.

A row that names a client but not a tenant task fails without running
(tenants.tasks.refuse_plain_tasks_that_name_a_client).
"""

from django_tasks_db.management.commands.db_worker import Command as DatabaseWorkerCommand

from tenants.context import dangerously_bypass_rls


class Command(DatabaseWorkerCommand):
    def handle(self, *args, **options):
        # Not atomic: the worker commits each claim and each result itself.
        with dangerously_bypass_rls(atomic=False):
            return super().handle(*args, **options)
