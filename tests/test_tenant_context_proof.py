"""The tenant context cannot be forged from SQL on the app connection: the
client id counts only with an HMAC proof bound to this backend and this
transaction (tenants/context_proof.py)."""

import secrets

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.test import Client as HttpClient

from tenants.context import apply_client_setting, dangerously_bypass_rls, tenant_context
from tenants.context_proof import TenantContextRefused, fingerprint, proof, secret, transaction_binding
from tests.factories import ALL_DATABASES, bearer, issue_token, make_client, make_user
from tests.tenancy_probe.models import ProbeNote

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)


@pytest.fixture
def two_clients():
    a, b = make_client(slug="alpha"), make_client(slug="bravo")
    with dangerously_bypass_rls():
        for client in (a, b):
            ProbeNote.objects.create(client=client, title=f"{client.slug} secret note")
    return a, b


def app_cursor_in_context(client_id):
    apply_client_setting(connections["app"], client_id)
    return connections["app"].cursor()


def visible_titles(cursor) -> set[str]:
    cursor.execute("SELECT title FROM tenancy_probe_probenote")
    return {row[0] for row in cursor.fetchall()}


def test_a_valid_context_sees_its_own_rows(two_clients):
    a, _ = two_clients
    with transaction.atomic(using="app"), app_cursor_in_context(a.pk) as cursor:
        assert visible_titles(cursor) == {"alpha secret note"}


def test_setting_another_client_id_without_its_proof_sees_nothing(two_clients):
    a, b = two_clients
    with transaction.atomic(using="app"), app_cursor_in_context(a.pk) as cursor:
        cursor.execute("SELECT set_config('app.client_id', %s, true)", [str(b.pk)])
        assert visible_titles(cursor) == set()
        cursor.execute("SELECT app.current_client_id()")
        assert cursor.fetchone()[0] is None


def test_a_plain_setting_without_any_proof_sees_nothing(two_clients):
    _, b = two_clients
    with transaction.atomic(using="app"), connections["app"].cursor() as cursor:
        cursor.execute("SELECT set_config('app.client_id', %s, true)", [str(b.pk)])
        assert visible_titles(cursor) == set()


def test_a_proof_copied_from_an_earlier_transaction_is_refused(two_clients):
    _, b = two_clients
    with transaction.atomic(using="app"), app_cursor_in_context(b.pk) as cursor:
        cursor.execute("SELECT current_setting('app.client_proof')")
        stolen = cursor.fetchone()[0]
        assert visible_titles(cursor) == {"bravo secret note"}
    with transaction.atomic(using="app"), connections["app"].cursor() as cursor:
        cursor.execute(
            "SELECT set_config('app.client_id', %s, true), set_config('app.client_proof', %s, true)",
            [str(b.pk), stolen],
        )
        assert visible_titles(cursor) == set()


def test_a_proof_copied_from_another_connection_is_refused(two_clients):
    _, b = two_clients
    with transaction.atomic(using="app"), app_cursor_in_context(b.pk) as cursor:
        cursor.execute("SELECT current_setting('app.client_proof'), transaction_timestamp()")
        stolen, _ = cursor.fetchone()
        db = connections["app"].settings_dict
        with psycopg.connect(host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"]) as other:
            with other.transaction():
                other.execute(
                    "SELECT set_config('app.client_id', %s, true), set_config('app.client_proof', %s, true)",
                    [str(b.pk), stolen],
                )
                assert other.execute("SELECT count(*) FROM tenancy_probe_probenote").fetchone()[0] == 0


def test_a_proof_made_with_the_right_inputs_but_a_wrong_key_is_refused(two_clients):
    _, b = two_clients
    with transaction.atomic(using="app"), connections["app"].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), (extract(epoch FROM transaction_timestamp()) * 1000000)::bigint")
        pid, started = cursor.fetchone()
        forged = proof(b"x" * 48, b.pk, pid, started)
        cursor.execute(
            "SELECT set_config('app.client_id', %s, true), set_config('app.client_proof', %s, true)",
            [str(b.pk), forged],
        )
        assert visible_titles(cursor) == set()
        # ... while the same inputs under the real key are accepted.
        cursor.execute("SELECT set_config('app.client_proof', %s, true)", [proof(secret(), b.pk, pid, started)])
        assert visible_titles(cursor) == {"bravo secret note"}


@pytest.mark.parametrize("alias", ["app", "staff", "service"])
def test_runtime_roles_cannot_read_or_change_the_verification_keys(alias):
    for statement in (
        "SELECT secret FROM app.tenant_context_key",
        "INSERT INTO app.tenant_context_key (fingerprint, secret) VALUES ('x', decode(repeat('ab', 32), 'hex'))",
        "UPDATE app.tenant_context_key SET expires_at = NULL",
        "DELETE FROM app.tenant_context_key",
    ):
        with pytest.raises(DatabaseError, match="permission denied"):
            with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                cursor.execute(statement)


def test_the_verification_internals_leak_nothing(two_clients):
    _, b = two_clients
    with transaction.atomic(using="app"), connections["app"].cursor() as cursor:
        # The function source is readable by anyone; the key is not in it.
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'current_client_id'")
        source = cursor.fetchone()[0]
        assert settings.TENANT_CONTEXT_SECRET not in source and "hmac" in source
        # Garbage in the settings gives NULL, not an error that echoes anything.
        for claimed, presented in ((str(b.pk), "00" * 32), ("1 OR 1=1", "x"), ("-1", "y"), ("9" * 30, "z")):
            cursor.execute(
                "SELECT set_config('app.client_id', %s, true), set_config('app.client_proof', %s, true)",
                [claimed, presented],
            )
            cursor.execute("SELECT app.current_client_id()")
            assert cursor.fetchone()[0] is None
        # The staff role may not even call it.
    with pytest.raises(DatabaseError, match="permission denied"):
        with transaction.atomic(using="staff"), connections["staff"].cursor() as cursor:
            cursor.execute("SELECT app.current_client_id()")


def test_injected_sql_in_client_as_request_cannot_return_client_bs_rows(two_clients):
    a, b = two_clients
    token = bearer(issue_token(make_user(client=a)))
    attacks = [
        ["SELECT title FROM tenancy_probe_probenote"],
        [f"SELECT set_config('app.client_id', '{b.pk}', true)", "SELECT title FROM tenancy_probe_probenote"],
        [
            f"SELECT set_config('app.client_id', '{b.pk}', false)",
            "SELECT set_config('app.client_proof', current_setting('app.client_proof'), false)",
            "SELECT title FROM tenancy_probe_probenote",
        ],
        [f"SET app.client_id = '{b.pk}'", "SELECT title FROM tenancy_probe_probenote"],
        ["SELECT title FROM tenancy_probe_probenote WHERE client_id <> app.current_client_id() OR true"],
        ["SELECT count(*)::text FROM tenants_client"],
        ["SELECT email FROM tenants_user"],
    ]
    for statements in attacks:
        response = HttpClient().post(
            "/api/test-only/injectable/", {"statements": statements}, content_type="application/json", **token
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["alias"] == "app"
        flat = {cell for row in body["rows"] for cell in row}
        assert "bravo secret note" not in flat, statements
        assert not any("bravo" in cell for cell in flat), statements
    # The connection is clean afterwards: a later request of B's own admin
    # sees B's rows, and an anonymous query on the pooled connection sees none.
    with transaction.atomic(using="app"), connections["app"].cursor() as cursor:
        assert visible_titles(cursor) == set()


def test_tenant_queries_compute_the_client_once_per_statement_and_use_the_index(two_clients):
    a, _ = two_clients
    with dangerously_bypass_rls():
        ProbeNote.objects.bulk_create([ProbeNote(client=a, title=f"n{i}") for i in range(2000)])
    with transaction.atomic(using="app"), app_cursor_in_context(a.pk) as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
            "SELECT n.id FROM tenancy_probe_probenote n WHERE n.public_id IS NOT NULL"
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    # One InitPlan, run once (loops=1), feeds an index condition: the proof is
    # verified once per statement, not once for each of the 2,001 rows.
    assert plan.count("InitPlan") == 1, plan
    assert "actual rows=1 loops=1" in plan.split("InitPlan")[1].splitlines()[1], plan
    assert "Index Cond: (client_id = $0)" in plan, plan


def inject(token: dict, statements: list[str]):
    return HttpClient().post(
        "/api/test-only/injectable/", {"statements": statements}, content_type="application/json", **token
    )


def test_injected_sql_cannot_leave_objects_behind_for_the_next_request_on_the_connection(two_clients):
    """Temporary objects outlive the transaction and `pg_temp` is searched
    first: a temp view or table named like ours would catch the next
    client's queries on the same pooled connection. Nobody may create one."""
    a, b = two_clients
    token_a, token_b = bearer(issue_token(make_user(client=a))), bearer(issue_token(make_user(client=b)))
    plants = [
        "CREATE TEMP TABLE tenancy_probe_probenote AS SELECT * FROM public.tenancy_probe_probenote",
        "CREATE TEMP VIEW tenancy_probe_probenote AS SELECT * FROM public.tenancy_probe_probenote",
        "CREATE FUNCTION pg_temp.steal() RETURNS boolean LANGUAGE sql AS 'SELECT true'",
        "CREATE TEMP SEQUENCE watch",
    ]
    for statement in plants:
        response = inject(token_a, [statement])
        assert response.status_code == 400 and "permission denied" in response.json()["error"], statement
    # B's next request on the same connection reads the real table, its own row.
    response = inject(token_b, ["SELECT title FROM tenancy_probe_probenote"])
    assert response.json()["rows"] == [["bravo secret note"]]


def test_injected_sql_cannot_look_accounts_up(two_clients):
    """There is no lookup by (guessable) user id, and the email lookup
    answers only with the application's proof for that email in this
    transaction: not for SQL that names an email of its choosing, nor with a
    proof taken from an earlier transaction."""
    a, b = two_clients
    make_user(client=b, email="someone@bravo.test")
    token = bearer(issue_token(make_user(client=a)))
    response = inject(token, ["SELECT count(*) FROM generate_series(1, 500) i, app.auth_identity_by_id(i)"])
    assert response.status_code == 400 and "does not exist" in response.json()["error"]
    with transaction.atomic(using="app"), connections["app"].cursor() as cursor:
        pid, started = transaction_binding(cursor)
    stale_proof = proof(secret(), "email:someone@bravo.test", pid, started)
    for arguments in ("'someone@bravo.test', ''", "'someone@bravo.test', 'f00d'", f"'someone@bravo.test', '{stale_proof}'"):
        response = inject(token, [f"SELECT count(*) FROM app.auth_identity_by_email({arguments})"])
        assert response.status_code == 400, arguments
        assert "the email lookup needs the application's proof" in response.json()["error"]
    # The application's own lookup, with its proof, finds the account.
    from tenants.auth import identity_by_email

    assert identity_by_email("someone@bravo.test").client_id == b.pk


@pytest.fixture
def expire_the_configured_key():
    def expire():
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "UPDATE app.tenant_context_key SET expires_at = now() - interval '1 second' WHERE fingerprint = %s",
                [fingerprint(secret())],
            )

    yield expire
    with connections["default"].cursor() as cursor:
        cursor.execute("UPDATE app.tenant_context_key SET expires_at = NULL WHERE fingerprint = %s", [fingerprint(secret())])


def test_a_process_whose_secret_was_never_installed_fails_loudly_instead_of_seeing_nothing(two_clients, settings):
    a, _ = two_clients
    settings.TENANT_CONTEXT_SECRET = unknown = secrets.token_urlsafe(48)
    with pytest.raises(TenantContextRefused, match="TENANT_CONTEXT_SECRET") as error:
        with tenant_context(a.pk):
            ProbeNote.objects.count()
    assert unknown not in str(error.value)
    assert fingerprint(unknown.encode()) in str(error.value)


def test_a_process_whose_key_expired_fails_loudly_instead_of_seeing_nothing(two_clients, expire_the_configured_key):
    a, _ = two_clients
    with tenant_context(a.pk):
        assert ProbeNote.objects.count() == 1
    expire_the_configured_key()
    with pytest.raises(TenantContextRefused, match="retired, expired or was never installed") as error:
        with tenant_context(a.pk):
            ProbeNote.objects.count()
    assert settings.TENANT_CONTEXT_SECRET not in str(error.value)
    # Signing in fails loudly too, instead of answering "no such account".
    from tenants.auth import identity_by_email

    with pytest.raises(TenantContextRefused, match="retired, expired or was never installed"):
        identity_by_email("someone@alpha.test")
    # Clearing the context needs no proof, so it still works.
    with transaction.atomic(using="app"):
        apply_client_setting(connections["app"], None)


@pytest.mark.parametrize("alias", ["app", "staff", "default"])
def test_statement_text_never_holds_the_values(alias):
    """Sessions of one role see each other's statements in pg_stat_activity
    (and the server logs statements that fail): parameters are bound on the
    server, so the text shows `$1`, never a client's value or a key."""
    marker = "guardian-email@bravo.test"
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid() AND %s <> ''", [marker])
        (text,) = cursor.fetchone()
    assert "$1" in text and marker not in text


def test_session_state_left_by_injected_sql_is_gone_for_the_next_request(two_clients):
    """The connection is reused; whatever A's injected SQL set for the session
    must not reach B's next request on it."""
    a, b = two_clients
    token_a, token_b = bearer(issue_token(make_user(client=a)), ), bearer(issue_token(make_user(client=b)))
    response = inject(token_a, [
        "SELECT set_config('x.drop', 'left by A', false)",
        "SET SESSION search_path = pg_catalog",
        "SET SESSION default_transaction_read_only = on",
        "SELECT pg_advisory_lock(424242)",
        "SELECT pg_backend_pid()",
    ])
    assert response.status_code == 200
    (a_pid,) = response.json()["rows"][0]
    response = inject(token_b, [
        "SELECT pg_backend_pid(), coalesce(current_setting('x.drop', true), ''), current_setting('search_path'), "
        "current_setting('default_transaction_read_only'), "
        "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())::text",
    ])
    assert response.status_code == 200, response.content
    pid, dropped, search_path, read_only, advisory_locks = response.json()["rows"][0]
    assert pid == a_pid, "B's request must reuse the connection A's request used"
    assert (dropped, read_only, advisory_locks) == ("", "off", "0")
    assert search_path == '"$user", public'
    response = inject(token_b, ["SELECT title FROM tenancy_probe_probenote"])
    assert response.json()["rows"] == [["bravo secret note"]]


def test_a_connection_reset_after_a_request_is_still_in_djangos_time_zone(two_clients):
    """DISCARD ALL returns the session to the database's defaults; the
    database defaults to UTC, so no SET TIME ZONE round trip follows."""
    a, _ = two_clients
    response = inject(bearer(issue_token(make_user(client=a))), ["SELECT 1"])
    assert response.status_code == 200
    connection = connections["app"]
    assert connection.connection is not None and connection.sagerock_used is False
    connection.connection.execute("DISCARD ALL")  # what the reset runs, without Django's fix-up
    assert connection.connection.info.parameter_status("TimeZone") == "UTC"
