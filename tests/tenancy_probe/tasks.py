from tenants.tasks import tenant_task
from tests.tenancy_probe.models import ProbeNote


@tenant_task
def rename_notes(client_id: int, title: str) -> int:
    return ProbeNote.objects.update(title=title)
