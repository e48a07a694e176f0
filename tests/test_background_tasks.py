"""Queued work runs: a task enqueued in a client's request is picked up by
the database worker and runs in that client's context only."""

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connections
from django.utils import timezone

from tenants.context import dangerously_bypass_rls, staff_context, tenant_context
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
    run_worker()
    with tenant_context(a.pk):  # a client reads its own task's result
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
    run_worker()
    from django_tasks_db.models import DBTaskResult

    with dangerously_bypass_rls():
        assert DBTaskResult.objects.count() == 0


def run_worker() -> None:
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", stdout=io.StringIO(), stderr=io.StringIO())


def queued_row():
    from django_tasks_db.models import DBTaskResult

    with dangerously_bypass_rls():
        return DBTaskResult.objects.get()


def test_staff_may_queue_a_tenant_task_for_any_client():
    a = make_client()
    with dangerously_bypass_rls():
        ProbeNote.objects.create(client=a, title="a")
    with staff_context():
        rename_notes.enqueue(a.pk, "queued by staff")
    run_worker()
    with dangerously_bypass_rls():
        assert ProbeNote.objects.get(client=a).title == "queued by staff"


# --- SQL injected on the app connection cannot reach another client through the queue -----------


def app_sql(client_id, sql, params=()):
    """Run raw SQL as sagerock_app inside a proven context for `client_id`."""
    with tenant_context(client_id), connections["app"].cursor() as cursor:
        cursor.execute(sql, params)


def test_sql_in_client_as_context_cannot_queue_a_task_for_client_b():
    a, b = make_client(), make_client()
    with tenant_context(a.pk):
        rename_notes.enqueue(a.pk, "legitimate")
    row = queued_row()
    with connections["service"].cursor() as cursor:
        cursor.execute(
            "SELECT string_agg(quote_ident(column_name), ', ') FROM information_schema.columns"
            " WHERE table_name = 'django_tasks_database_dbtaskresult' AND column_name NOT IN ('id', 'args_kwargs', 'client_id')"
        )
        columns = cursor.fetchone()[0]
    forged = {"args": ["pwned"], "kwargs": {"tenant_client_id": b.pk}}
    for args_kwargs in (forged, {"args": [b.pk, "pwned"], "kwargs": {}}, {"args": [], "kwargs": {}}):
        # A copy of A's legitimate row with new arguments.
        with pytest.raises(DatabaseError, match="must be a tenant task for that client"):
            app_sql(
                a.pk,
                f"INSERT INTO django_tasks_database_dbtaskresult (id, args_kwargs, {columns}) "
                f"SELECT gen_random_uuid(), %s::jsonb, {columns} FROM django_tasks_database_dbtaskresult WHERE id = %s",
                [json.dumps(args_kwargs), str(row.id)],
            )
    # The same copy with A's own client goes in: the guard is not a blanket refusal.
    app_sql(
        a.pk,
        f"INSERT INTO django_tasks_database_dbtaskresult (id, args_kwargs, {columns}) "
        f"SELECT gen_random_uuid(), args_kwargs, {columns} FROM django_tasks_database_dbtaskresult WHERE id = %s",
        [str(row.id)],
    )


def app_rowcount(client_id, sql, params=()) -> int:
    with tenant_context(client_id), connections["app"].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def test_sql_in_client_as_context_cannot_see_touch_or_requeue_client_bs_tasks():
    a, b = make_client(), make_client()
    with dangerously_bypass_rls():
        ProbeNote.objects.create(client=b, title="b")
    with tenant_context(b.pk):
        rename_notes.enqueue(b.pk, "b's own rename")
    row = queued_row()
    table = "django_tasks_database_dbtaskresult"
    assert app_rowcount(a.pk, f"SELECT * FROM {table}") == 0
    for sql in (
        f"UPDATE {table} SET args_kwargs = jsonb_set(args_kwargs, '{{args,0}}', '\"pwned\"') WHERE id = %s",
        f"UPDATE {table} SET task_path = 'tests.tenancy_probe.tasks.other' WHERE id = %s",
        f"DELETE FROM {table} WHERE id = %s",
    ):
        assert app_rowcount(a.pk, sql, [str(row.id)]) == 0
    run_worker()
    with dangerously_bypass_rls():
        assert ProbeNote.objects.get(client=b).title == "b's own rename"
    assert app_rowcount(a.pk, f"UPDATE {table} SET status = 'READY' WHERE id = %s", [str(row.id)]) == 0


def test_a_client_cannot_rewrite_its_own_task_into_another_clients_or_run_it_twice():
    a, b = make_client(), make_client()
    with tenant_context(a.pk):
        rename_notes.enqueue(a.pk, "a's rename")
    row = queued_row()
    table = "django_tasks_database_dbtaskresult"
    for sql in (
        f"UPDATE {table} SET args_kwargs = jsonb_set(args_kwargs, '{{kwargs,tenant_client_id}}', '{b.pk}') WHERE id = %s",
        f"UPDATE {table} SET task_path = 'tests.tenancy_probe.tasks.other' WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="cannot change"):
            app_sql(a.pk, sql, [str(row.id)])
    run_worker()
    with pytest.raises(DatabaseError, match="cannot be queued again"):
        app_sql(a.pk, f"UPDATE {table} SET status = 'READY' WHERE id = %s", [str(row.id)])


def test_a_queued_row_without_the_client_keyword_is_refused_by_the_worker():
    """Rows written before the guard or by a trusted role by mistake: the
    body never runs without its client keyword."""
    from django_tasks_db.models import DBTaskResult

    a = make_client()
    with dangerously_bypass_rls():
        ProbeNote.objects.create(client=a, title="a")
    with staff_context():
        rename_notes.enqueue(a.pk, "x")
        DBTaskResult.objects.update(args_kwargs={"args": [a.pk, "positional client"], "kwargs": {}})
    run_worker()
    row = queued_row()
    assert row.status == "FAILED" and "tenant_client_id" in row.exception_class_path + row.traceback
    with dangerously_bypass_rls():
        assert ProbeNote.objects.get(client=a).title == "a"


def test_the_client_keyword_is_reserved():
    a = make_client()
    with tenant_context(a.pk), pytest.raises(TypeError, match="reserved"):
        rename_notes.enqueue(a.pk, "x", tenant_client_id=a.pk)


def test_pruning_removes_old_finished_results_of_every_client():
    """The queue is a tenant table: the pruning command runs as the service
    role, or it would see no client's rows."""
    from django_tasks_db.models import DBTaskResult

    a, b = make_client(), make_client()
    for client in (a, b):
        with tenant_context(client.pk):
            rename_notes.enqueue(client.pk, "x")
    run_worker()
    with dangerously_bypass_rls():
        DBTaskResult.objects.update(finished_at=timezone.now() - timedelta(days=30))
    out = io.StringIO()
    call_command("prune_db_task_results", "--min-age-days", "1", stdout=out)
    with dangerously_bypass_rls():
        assert DBTaskResult.objects.count() == 0


def test_a_row_naming_a_client_but_a_plain_task_is_failed_without_running():
    """SQL in A's context may queue rows for A; pointed at a plain task (which
    the worker would run with the service role's rights) it must not run."""
    from django_tasks_db.models import DBTaskResult

    a = make_client()
    with tenant_context(a.pk):
        rename_notes.enqueue(a.pk, "legitimate")
    row = queued_row()
    app_sql(
        a.pk,
        "UPDATE django_tasks_database_dbtaskresult SET status = 'FAILED' WHERE id = %s",  # keep only the forged row
        [str(row.id)],
    )
    with connections["service"].cursor() as cursor:
        cursor.execute(
            "SELECT string_agg(quote_ident(column_name), ', ') FROM information_schema.columns"
            " WHERE table_name = 'django_tasks_database_dbtaskresult'"
            " AND column_name NOT IN ('id', 'task_path', 'status', 'client_id')"
        )
        columns = cursor.fetchone()[0]
    app_sql(
        a.pk,
        f"INSERT INTO django_tasks_database_dbtaskresult (id, task_path, status, {columns}) "
        f"SELECT gen_random_uuid(), 'tests.tenancy_probe.tasks.count_every_note', 'READY', {columns} "
        f"FROM django_tasks_database_dbtaskresult WHERE id = %s",
        [str(row.id)],
    )
    run_worker()
    with dangerously_bypass_rls():
        forged = DBTaskResult.objects.get(task_path="tests.tenancy_probe.tasks.count_every_note")
    assert forged.status == "FAILED" and forged.exception_class_path.endswith("NotATenantTask")
    assert forged.return_value is None
