"""Background tasks that work on one client's data.

Every such task takes `client_id` first and runs its body inside
`tenant_context(client_id)`, so the worker (which starts with no context, and
therefore sees no client's rows) touches exactly that client's data.
"""

import functools

from django_tasks import task

from tenants.context import tenant_context


def tenant_task(function=None, **task_options):
    """`@tenant_task` / `@tenant_task(queue_name=...)`: a Django task whose
    body runs in the client context named by its first argument."""

    def decorate(body):
        @functools.wraps(body)
        def in_context(client_id: int, *args, **kwargs):
            with tenant_context(client_id):
                return body(client_id, *args, **kwargs)

        return task(**task_options)(in_context)

    return decorate(function) if function is not None else decorate
