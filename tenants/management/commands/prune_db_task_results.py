"""django-tasks-db's pruning command, run as the service role: the queue is a
tenant table (tenants migration 0008), so with no client the app role would
see, and prune, nothing."""

from django_tasks_db.management.commands.prune_db_task_results import Command as PruneCommand

from tenants.context import dangerously_bypass_rls


class Command(PruneCommand):
    def handle(self, *args, **options):
        with dangerously_bypass_rls(atomic=False):
            return super().handle(*args, **options)
