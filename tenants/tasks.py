"""Background tasks that work on one client's data.

A tenant task is enqueued as `my_task.enqueue(client_id, ...)` and its body is
called as `body(client_id, ...)` inside `tenant_context(client_id)`, so the
worker (which starts with no context, and therefore sees no client's rows)
touches exactly that client's data.

The client travels in the queued row as the keyword argument
`tenant_client_id`, which the database exposes as the queue's generated
`client_id` column under Row Level Security (tenants migration 0008): the app
role sees and queues only its proven client's tasks. The trigger
`app.guard_task_queue` (migration 0005) also keeps a runtime role from
changing a queued row's task or arguments or sending a finished task back to
the queue. SQL injected on the app connection in client A's request therefore
can neither read B's queued work nor make the worker run anything for B.
Staff and the service role may queue tenant tasks for any client; the worker
claims tasks through the service connection (the db_worker command,
tenants/management/commands/db_worker.py).
"""

import functools

from django.core.exceptions import SuspiciousOperation
from django_tasks import task
from django_tasks.base import Task

from tenants.context import tenant_context

TENANT_KWARG = "tenant_client_id"


class TenantTask(Task):
    """A Task whose first `enqueue` argument is the client it runs for."""

    def enqueue(self, client_id: int, *args, **kwargs):
        return super().enqueue(*args, **_with_client(client_id, kwargs))

    async def aenqueue(self, client_id: int, *args, **kwargs):
        return await super().aenqueue(*args, **_with_client(client_id, kwargs))


def _with_client(client_id: int, kwargs: dict) -> dict:
    if TENANT_KWARG in kwargs:
        raise TypeError(f"{TENANT_KWARG} is reserved for the tenant task machinery")
    return {TENANT_KWARG: client_id, **kwargs}


def tenant_task(function=None, **task_options):
    """`@tenant_task` / `@tenant_task(queue_name=...)`: a Django task whose
    body runs in the client context named by `enqueue`'s first argument."""

    def decorate(body):
        @functools.wraps(body)
        def in_context(*args, tenant_client_id: int, **kwargs):
            # Keyword-only: a queued row without it (positional client ids
            # included) fails here instead of running in some context.
            with tenant_context(tenant_client_id):
                return body(tenant_client_id, *args, **kwargs)

        plain = task(**task_options)(in_context)
        return TenantTask(**{name: getattr(plain, name) for name in Task.__dataclass_fields__})

    return decorate(function) if function is not None else decorate


class NotATenantTask(SuspiciousOperation):
    pass


def refuse_plain_tasks_that_name_a_client(sender, task_result, **kwargs) -> None:
    """`task_started` receiver: the app role may queue rows for its own
    client, and one that points at a plain task (which the worker runs with
    the service role's rights) must not run. Raising here fails the task
    before its body is called."""
    if TENANT_KWARG in task_result.kwargs and not isinstance(task_result.task, TenantTask):
        raise NotATenantTask(f"{task_result.task.module_path} is not a tenant task but its row names a client")
