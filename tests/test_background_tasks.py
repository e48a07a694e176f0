"""Queued work runs: a task enqueued in a client's request is picked up by
the database worker and runs in that client's context only."""

import io

import pytest
from django.core.management import call_command

from tenants.context import dangerously_bypass_rls, tenant_context
from tests.factories import ALL_DATABASES, make_client
from tests.tenancy_probe.models import ProbeNote
from tests.tenancy_probe.tasks import rename_notes

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)


def test_the_worker_runs_a_queued_tenant_task_in_its_clients_context_only():
    a, b = make_client(), make_client()
    with dangerously_bypass_rls():
        ProbeNote.objects.create(client=a, title="a")
        ProbeNote.objects.create(client=b, title="b")
    with tenant_context(a.pk):
        result = rename_notes.enqueue(a.pk, "renamed by the worker")
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", stdout=io.StringIO(), stderr=io.StringIO())
    result.refresh()
    assert result.status == "SUCCESSFUL" and result.return_value == 1
    with dangerously_bypass_rls():
        assert ProbeNote.objects.get(client=a).title == "renamed by the worker"
        assert ProbeNote.objects.get(client=b).title == "b"


def test_a_task_enqueued_in_a_transaction_that_rolls_back_never_runs():
    a = make_client()
    with pytest.raises(RuntimeError):
        with tenant_context(a.pk):
            rename_notes.enqueue(a.pk, "should not happen")
            raise RuntimeError("request failed")
    out = io.StringIO()
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", stdout=out, stderr=io.StringIO())
    from django_tasks_db.models import DBTaskResult

    assert DBTaskResult.objects.count() == 0
