from django_tasks import task

from tenants.tasks import tenant_task
from tests.tenancy_probe.models import ProbeNote


@tenant_task
def rename_notes(client_id: int, title: str) -> int:
    return ProbeNote.objects.update(title=title)


@task
def count_every_note(**kwargs) -> int:
    """A plain task (no client): when the worker runs one, it runs as the
    service role and sees every client's rows."""
    return ProbeNote.objects.count()
