import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from tenants.rls import find_problems

pytestmark = pytest.mark.django_db(databases=["default", "app", "staff", "service"], transaction=True)


@pytest.fixture
def owner_sql():
    """Run DDL as the owner and undo it afterwards, committed so that the
    check (which reads the catalog through the app role) sees it."""
    cleanup: list[str] = []

    def run(statement: str, undo: str | None = None) -> None:
        with connections["default"].cursor() as cursor:
            cursor.execute(statement)
        if undo:
            cleanup.append(undo)

    yield run
    with connections["default"].cursor() as cursor:
        for statement in reversed(cleanup):
            cursor.execute(statement)


def problems_for(table: str) -> list[str]:
    return [p.problem for p in find_problems() if p.table == table]


def test_check_rls_passes_on_the_migrated_schema(capsys):
    call_command("check_rls")
    assert "every tenant table is isolated" in capsys.readouterr().out


def test_check_rls_fails_naming_a_tenant_table_without_rls(owner_sql, capsys):
    owner_sql("CREATE TABLE leaky_things (id bigint PRIMARY KEY, client_id bigint NOT NULL)", "DROP TABLE leaky_things")
    with pytest.raises(CommandError, match="Row Level Security problem"):
        call_command("check_rls")
    report = capsys.readouterr().err
    assert "leaky_things" in report
    assert "row level security is not enabled" in report
    assert "missing policy tenant_isolation" in report


def test_check_rls_reports_rls_that_is_enabled_but_not_forced(owner_sql):
    owner_sql("CREATE TABLE half_things (id bigint PRIMARY KEY, client_id bigint NOT NULL)", "DROP TABLE half_things")
    owner_sql("ALTER TABLE half_things ENABLE ROW LEVEL SECURITY")
    problems = problems_for("half_things")
    assert "row level security is not forced (the owner bypasses it)" in problems
    assert "row level security is not enabled" not in problems


def test_check_rls_reports_a_policy_of_another_shape(owner_sql):
    owner_sql("CREATE TABLE odd_things (id bigint PRIMARY KEY, client_id bigint NOT NULL)", "DROP TABLE odd_things")
    owner_sql("ALTER TABLE odd_things ENABLE ROW LEVEL SECURITY")
    owner_sql("ALTER TABLE odd_things FORCE ROW LEVEL SECURITY")
    owner_sql(
        "CREATE POLICY tenant_isolation ON odd_things TO sagerock_app "
        "USING (client_id = app.current_client_id() OR true)"
    )
    owner_sql("CREATE POLICY staff_all_clients ON odd_things TO sagerock_staff USING (true) WITH CHECK (true)")
    owner_sql("CREATE POLICY everyone ON odd_things TO PUBLIC USING (true)")
    problems = problems_for("odd_things")
    assert any(p.startswith("policy tenant_isolation has another shape") for p in problems)
    assert any(p.startswith("unexpected policy everyone") for p in problems)


def test_check_rls_reports_truncate_grants_and_unique_keys_without_client_id(owner_sql):
    owner_sql(
        "CREATE TABLE keyed_things (id bigint PRIMARY KEY, client_id bigint NOT NULL, code text UNIQUE)",
        "DROP TABLE keyed_things",
    )
    owner_sql("GRANT TRUNCATE ON keyed_things TO sagerock_app")
    problems = problems_for("keyed_things")
    assert "sagerock_app has TRUNCATE" in problems
    assert "unique key keyed_things_code_key (code) does not include client_id" in problems


def test_check_rls_reports_a_table_that_is_neither_tenant_nor_allow_listed(owner_sql):
    owner_sql("CREATE TABLE mystery_things (id bigint PRIMARY KEY, owner_email text)", "DROP TABLE mystery_things")
    assert problems_for("mystery_things") == ["no client_id column and not on the NO_CLIENT_DATA allow-list"]


def test_check_rls_reports_a_view_that_reads_with_its_owners_rights(owner_sql):
    owner_sql("CREATE VIEW all_users AS SELECT id, email FROM tenants_user", "DROP VIEW all_users")
    assert problems_for("all_users") == ["view without security_invoker (it would read with its owner's rights)"]


def test_check_rls_reports_a_nullable_client_id(owner_sql):
    owner_sql("CREATE TABLE loose_things (id bigint PRIMARY KEY, client_id bigint)", "DROP TABLE loose_things")
    assert "client_id is nullable" in problems_for("loose_things")


def test_the_system_check_reports_problems_at_deploy_time(owner_sql):
    from django.core import checks

    owner_sql("CREATE TABLE leaky_things (id bigint PRIMARY KEY, client_id bigint NOT NULL)", "DROP TABLE leaky_things")
    messages = checks.run_checks(databases=["default"], tags=[checks.Tags.database])
    assert any(m.id == "tenants.E001" and "leaky_things" in m.msg for m in messages)


def test_check_rls_reports_a_disabled_task_queue_guard(owner_sql):
    table = "django_tasks_database_dbtaskresult"
    owner_sql(f"ALTER TABLE {table} DISABLE TRIGGER guard_task_queue", f"ALTER TABLE {table} ENABLE TRIGGER guard_task_queue")
    assert "guard trigger guard_task_queue is disabled" in problems_for(table)


def test_check_rls_reports_a_connection_that_logs_in_as_another_role():
    """The app connection given the service role's credentials would bypass
    RLS while every table still looks right in the catalog."""
    app = connections["app"]
    original = dict(app.settings_dict)
    app.close()
    app.settings_dict["USER"] = connections["service"].settings_dict["USER"]
    app.settings_dict["PASSWORD"] = connections["service"].settings_dict["PASSWORD"]
    try:
        problems = [p.problem for p in find_problems(using="default") if p.table == "(connection app)"]
    finally:
        app.close()
        app.settings_dict.clear()
        app.settings_dict.update(original)
    assert problems == ["logs in as sagerock_service, not sagerock_app", "sagerock_service bypasses row level security"]


def test_check_rls_reports_an_unmigrated_database_instead_of_failing(owner_sql):
    owner_sql("ALTER SCHEMA app RENAME TO app_moved", "ALTER SCHEMA app_moved RENAME TO app")
    assert [(p.table, p.problem) for p in find_problems(using="default")] == [
        ("(database)", "not migrated: schema app is missing; run `manage.py migrate`")
    ]


def test_check_rls_reports_a_reference_between_tenant_tables_that_ignores_the_client(owner_sql):
    owner_sql(
        "CREATE TABLE pointy_things (id bigint PRIMARY KEY, client_id bigint NOT NULL, "
        "note_id bigint REFERENCES tenancy_probe_probenote (id))",
        "DROP TABLE pointy_things",
    )
    assert (
        "note_id references tenancy_probe_probenote without matching the client (no same-client key or guard)"
        in problems_for("pointy_things")
    )


@pytest.mark.parametrize(
    "grant, revoke, problem_table, problem",
    [
        (
            "GRANT TEMPORARY ON DATABASE {db} TO sagerock_app", "REVOKE TEMPORARY ON DATABASE {db} FROM sagerock_app",
            "(database)", "sagerock_app may create temporary objects (they outlive a request's transaction)",
        ),
        (
            "GRANT SELECT (secret) ON app.tenant_context_key TO sagerock_staff",
            "REVOKE SELECT (secret) ON app.tenant_context_key FROM sagerock_staff",
            "app.tenant_context_key", "sagerock_staff can read or change it",
        ),
        (
            "GRANT SELECT ON app.global_key TO sagerock_app", "REVOKE SELECT ON app.global_key FROM sagerock_app",
            "app.global_key", "sagerock_app can read or change it",
        ),
        (
            "ALTER FUNCTION app.current_client_id() SET search_path = public, pg_temp",
            "ALTER FUNCTION app.current_client_id() SET search_path = pg_catalog, pg_temp",
            "app.current_client_id()", "SECURITY DEFINER without 'search_path=pg_catalog, pg_temp'",
        ),
        (
            "CREATE SCHEMA scratch; GRANT CREATE ON SCHEMA scratch TO sagerock_staff", "DROP SCHEMA scratch",
            "(schema scratch)", "sagerock_staff may create objects in it",
        ),
        (
            "GRANT EXECUTE ON FUNCTION app.auth_identity_by_email(text, text) TO sagerock_service",
            "REVOKE EXECUTE ON FUNCTION app.auth_identity_by_email(text, text) FROM sagerock_service",
            "app.auth_identity_by_email()",
            "EXECUTE granted to sagerock_app, sagerock_service, sagerock_staff; expected sagerock_app, sagerock_staff",
        ),
    ],
)
def test_check_rls_reports_privileges_that_open_a_side_channel(owner_sql, grant, revoke, problem_table, problem):
    database = connections["default"].settings_dict["NAME"]
    owner_sql(grant.format(db=f'"{database}"'), revoke.format(db=f'"{database}"'))
    assert problem in [p.problem for p in find_problems() if p.table == problem_table]


def test_check_rls_reports_a_runtime_role_that_may_rewrite_the_audit_log_or_its_clients_status(owner_sql):
    owner_sql("GRANT DELETE ON tenants_auditevent TO sagerock_app", "REVOKE DELETE ON tenants_auditevent FROM sagerock_app")
    owner_sql(
        "GRANT UPDATE (status) ON tenants_client TO sagerock_app", "REVOKE UPDATE (status) ON tenants_client FROM sagerock_app"
    )
    assert "sagerock_app has DELETE (allowed: INSERT, SELECT)" in problems_for("tenants_auditevent")
    assert "sagerock_app may UPDATE status" in problems_for("tenants_client")


def test_check_rls_reports_a_sequence_a_runtime_role_may_read(owner_sql):
    owner_sql(
        "GRANT SELECT ON SEQUENCE tenancy_probe_probenote_id_seq TO sagerock_app",
        "REVOKE SELECT ON SEQUENCE tenancy_probe_probenote_id_seq FROM sagerock_app",
    )
    assert "sagerock_app may SELECT it (last_value)" in problems_for("tenancy_probe_probenote_id_seq")


def _import_wsgi(**env):
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", "import sagerock.wsgi"], env={**os.environ, **env}, capture_output=True, text=True,
        timeout=60,
    )


def test_the_web_refuses_to_start_when_a_role_cannot_log_in():
    """A server that answers with an error is not "unreachable": a role whose
    login is refused stops start-up instead of skipping the check."""
    from urllib.parse import quote

    service = connections["service"].settings_dict
    url = f"postgres://sagerock_nobody@{quote(service['HOST'], safe='')}:{service['PORT'] or 5432}/{service['NAME']}"
    result = _import_wsgi(DATABASE_SERVICE_URL=url)
    assert result.returncode != 0
    assert "refusing to start" in result.stderr


def test_the_web_starts_when_the_database_is_unreachable():
    result = _import_wsgi(DATABASE_URL="postgres://sagerock_owner@%2Fnonexistent-socket-dir:5432/sagerock")
    assert result.returncode == 0, result.stderr
    assert "Row Level Security not checked at start-up" in result.stderr


def test_check_rls_reports_an_index_that_does_not_start_with_the_tenant_key(owner_sql):
    owner_sql(
        "CREATE INDEX probe_title_idx ON tenancy_probe_probenote (title)", "DROP INDEX probe_title_idx"
    )
    owner_sql(
        "CREATE INDEX probe_client_title_idx ON tenancy_probe_probenote (client_id, title)",
        "DROP INDEX probe_client_title_idx",
    )
    assert problems_for("tenancy_probe_probenote") == [
        "index probe_title_idx starts with title, not the tenant key (EXPLAIN ANALYZE can probe it)"
    ]


def test_check_rls_reports_a_runtime_role_that_may_write_ids(owner_sql):
    owner_sql(
        "GRANT INSERT ON tenancy_probe_probenote TO sagerock_app",
        "REVOKE INSERT ON tenancy_probe_probenote FROM sagerock_app; SELECT app.restrict_id_writes('tenancy_probe_probenote')",
    )
    assert "sagerock_app may write id (run app.restrict_id_writes on it)" in problems_for("tenancy_probe_probenote")
