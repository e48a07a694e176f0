"""Row Level Security, proven by raw SQL as each database role.

Every test here is transactional: rows are committed through the service role
so that the app, staff and owner connections can (or cannot) see them.
"""

import pytest
from django.db import DatabaseError, connections, transaction

from tenants.context import apply_client_setting, dangerously_bypass_rls, tenant_context
from tenants.rls import SHARED_WHEN_NULL, TENANT_KEY_COLUMN
from tenants.services import audit_record
from tests.factories import ALL_DATABASES, issue_token, make_api_application, make_client, make_user
from tests.tenancy_probe.models import ProbeComment, ProbeNote
from vault.tests.conftest import new_key

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)


def tenant_tables() -> list[tuple[str, str]]:
    """(table, tenant key column) for every table that holds client data."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'client_id' AND NOT a.attisdropped
            WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY 1
            """
        )
        tables = [(row[0], TENANT_KEY_COLUMN.get(row[0], "client_id")) for row in cursor.fetchall()]
    return [("tenants_client", "id"), *tables]


@pytest.fixture
def two_clients(settings):
    """Two clients with rows in every tenant table (checked below, so that
    "sees nothing" is never true of an empty table)."""
    settings.VAULT_KEYS = new_key()
    a, b = make_client(slug="alpha"), make_client(slug="bravo")
    for client in (a, b):
        seed_every_tenant_table(client)
    return a, b


def seed_every_tenant_table(client) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from tenants.models import OAuthDeviceGrant, OAuthGrant, OAuthIDToken, OAuthRefreshToken
    from tests.tenancy_probe.models import ProbeSecretNote
    from tests.tenancy_probe.tasks import rename_notes
    from vault.models import IntegrationCredential

    user = make_user(client=client, email=f"admin@{client.slug}.test")
    with tenant_context(client.pk):
        rename_notes.enqueue(client.pk, f"{client.slug} rename")
    application, _ = make_api_application(client)
    issue_token(user)
    soon = timezone.now() + timedelta(minutes=5)
    with dangerously_bypass_rls():
        audit_record(client_id=client.pk, actor="test", action="test.seeded")
        note = ProbeNote.objects.create(client=client, title=f"{client.slug} note")
        ProbeComment.objects.create(client=client, note=note, body="hello")
        ProbeSecretNote.objects.create(client=client, secret=f"{client.slug} secret")
        IntegrationCredential.objects.create(
            client=client, provider="anthropic", label="default", secret={"api_key": f"sk-ant-{client.slug}-0000000000"},
            fingerprint="0000",
        )
        OAuthGrant.objects.create(
            user=user, application=application, code=f"code-{client.slug}", expires=soon,
            redirect_uri="https://app.example/cb", code_challenge="x" * 43, code_challenge_method="S256",
        )
        OAuthRefreshToken.objects.create(user=user, application=application, token=f"refresh-{client.slug}")
        OAuthIDToken.objects.create(user=user, application=application, expires=soon)
        OAuthDeviceGrant.objects.create(
            user=user, device_code=f"device-{client.slug}", user_code=f"user-{client.slug}", expires=soon
        )


def app_execute(client_id: int, statement: str) -> None:
    """Run one statement as sagerock_app in a proven context for the client."""
    with transaction.atomic(using="app"), connections["app"].cursor() as cursor:
        apply_client_setting(connections["app"], client_id)
        cursor.execute(statement)


def app_count(table: str, key: str, client_id: int | None, condition: str = "true") -> int:
    with transaction.atomic(using="app"), connections["app"].cursor() as cursor:
        if client_id is not None:
            apply_client_setting(connections["app"], client_id)
        cursor.execute(f'SELECT count(*) FROM "{table}" WHERE {condition}')
        return cursor.fetchone()[0]


def test_with_no_client_set_every_tenant_table_returns_no_rows(two_clients):
    tables = tenant_tables()
    assert {"tenants_client", "tenants_user", "tenants_auditevent", "tenancy_probe_probenote"} <= {t for t, _ in tables}
    for table, key in tables:
        with connections["service"].cursor() as cursor:
            cursor.execute(f'SELECT count(DISTINCT "{key}") FROM "{table}"')
            assert cursor.fetchone()[0] >= 2, f"{table}: the fixture must give both clients a row"
        # First-party OAuth applications (no client) are readable by design.
        condition = f'"{key}" IS NOT NULL' if table in SHARED_WHEN_NULL else "true"
        assert app_count(table, key, None, condition) == 0, table


def test_with_client_a_set_only_client_a_rows_are_visible(two_clients):
    a, b = two_clients
    for table, key in tenant_tables():
        assert app_count(table, key, a.pk, f'"{key}" <> {a.pk}') == 0, table
        assert app_count(table, key, a.pk, f'"{key}" = {a.pk}') > 0, table
    assert app_count("tenants_user", "client_id", a.pk) == 1
    assert app_count("tenancy_probe_probenote", "client_id", a.pk) == 1
    assert app_count("tenants_client", "id", a.pk) == 1


def test_app_role_never_sees_staff_accounts(two_clients, super_admin):
    a, _ = two_clients
    assert app_count("tenants_user", "client_id", a.pk, "client_id IS NULL") == 0


def test_inserting_a_row_for_another_client_is_rejected(two_clients):
    a, b = two_clients
    with pytest.raises(DatabaseError, match="row-level security"):
        with transaction.atomic(using="app"), connections["app"].cursor() as cursor:
            apply_client_setting(connections["app"], a.pk)
            cursor.execute(
                "INSERT INTO tenancy_probe_probenote (client_id, public_id, title) VALUES (%s, gen_random_uuid(), 'x')",
                [b.pk],
            )


def test_moving_an_own_row_into_another_client_is_rejected(two_clients):
    a, b = two_clients
    with pytest.raises(DatabaseError, match="row-level security"):
        with transaction.atomic(using="app"), connections["app"].cursor() as cursor:
            apply_client_setting(connections["app"], a.pk)
            cursor.execute("UPDATE tenancy_probe_probenote SET client_id = %s", [b.pk])


def test_update_and_delete_of_another_clients_rows_touch_nothing(two_clients):
    a, b = two_clients
    with transaction.atomic(using="app"), connections["app"].cursor() as cursor:
        apply_client_setting(connections["app"], a.pk)
        cursor.execute("UPDATE tenancy_probe_probenote SET title = 'pwned' WHERE client_id = %s", [b.pk])
        assert cursor.rowcount == 0
        cursor.execute("DELETE FROM tenancy_probe_probecomment WHERE client_id = %s", [b.pk])
        assert cursor.rowcount == 0
        cursor.execute("UPDATE tenants_user SET last_login = now() WHERE client_id = %s", [b.pk])
        assert cursor.rowcount == 0
        cursor.execute("UPDATE tenants_client SET name = 'pwned' WHERE id = %s", [b.pk])
        assert cursor.rowcount == 0
    with dangerously_bypass_rls():
        assert ProbeNote.objects.get(client=b).title == "bravo note"
        assert ProbeComment.objects.filter(client=b).count() == 1


@pytest.mark.parametrize("alias", ["app", "staff"])
def test_truncate_is_denied_to_runtime_roles(two_clients, alias):
    with pytest.raises(DatabaseError, match="permission denied"):
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            cursor.execute("TRUNCATE tenancy_probe_probecomment")


@pytest.mark.parametrize("alias", ["app", "staff"])
def test_runtime_roles_cannot_create_or_alter_tables(alias):
    for statement in (
        "CREATE TABLE public.sneaky (id int)",
        "ALTER TABLE tenants_user DISABLE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON tenants_user",
        "CREATE SCHEMA sneaky",
    ):
        with pytest.raises(DatabaseError, match="permission denied|must be owner"):
            with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                cursor.execute(statement)


def test_client_setting_does_not_survive_its_transaction(two_clients):
    a, _ = two_clients
    connection = connections["app"]
    with transaction.atomic(using="app"), connection.cursor() as cursor:
        apply_client_setting(connection, a.pk)
        cursor.execute("SELECT count(*), pg_backend_pid() FROM tenancy_probe_probenote")
        count, first_pid = cursor.fetchone()
        assert count == 1
    with transaction.atomic(using="app"), connection.cursor() as cursor:
        cursor.execute("SELECT count(*), pg_backend_pid() FROM tenancy_probe_probenote")
        count, second_pid = cursor.fetchone()
        cursor.execute("SELECT current_setting('app.client_id', true), current_setting('app.client_proof', true)")
        settings_seen = cursor.fetchone()
    assert second_pid == first_pid, "the second transaction must run on the same connection"
    assert count == 0
    # The setting itself is gone, not only hidden by a proof that no longer
    # matches (a session-level set_config would survive with its proof).
    assert all(value in (None, "") for value in settings_seen)


def test_client_setting_made_outside_a_transaction_does_not_stick(two_clients):
    a, _ = two_clients
    connection = connections["app"]
    with connection.cursor() as cursor:
        # Autocommit: the statement is its own transaction.
        cursor.execute("SELECT set_config('app.client_id', %s, true)", [str(a.pk)])
        cursor.execute("SELECT count(*) FROM tenancy_probe_probenote")
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT current_setting('app.client_id', true)")
        assert cursor.fetchone()[0] in (None, "")


def test_staff_role_sees_every_client(two_clients, super_admin):
    with connections["staff"].cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT client_id) FROM tenancy_probe_probenote")
        assert cursor.fetchone()[0] == 2
        cursor.execute("SELECT count(*) FROM tenants_user WHERE client_id IS NULL")
        assert cursor.fetchone()[0] == 1


def test_service_role_bypasses_rls(two_clients):
    with connections["service"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tenants_client")
        assert cursor.fetchone()[0] == 2


def test_owner_role_is_subject_to_rls(two_clients):
    with connections["default"].cursor() as cursor:
        for table in ("tenants_client", "tenants_user", "tenancy_probe_probenote"):
            cursor.execute(f"SELECT count(*) FROM {table}")
            assert cursor.fetchone()[0] == 0, table


def test_a_reference_from_a_client_a_row_to_a_client_b_row_is_rejected(two_clients):
    a, b = two_clients
    with dangerously_bypass_rls():
        b_note = ProbeNote.objects.get(client=b)
    # Even the service role, which bypasses RLS, cannot point A's row at B's.
    with pytest.raises(DatabaseError, match="same_client"):
        with dangerously_bypass_rls():
            ProbeComment.objects.create(client=a, note=b_note, body="cross")
            connections["service"].check_constraints()
    with pytest.raises(DatabaseError, match="same_client"):
        with transaction.atomic(using="app"), connections["app"].cursor() as cursor:
            apply_client_setting(connections["app"], a.pk)
            cursor.execute(
                "INSERT INTO tenancy_probe_probecomment (client_id, public_id, note_id, body) "
                "VALUES (%s, gen_random_uuid(), %s, 'x')",
                [a.pk, b_note.pk],
            )
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_a_token_of_client_a_cannot_name_client_bs_application(two_clients):
    """Tokens may name their own client's application or a first-party one;
    another client's is refused, by the app role and the service role alike."""
    from tenants.models import OAuthApplication

    a, b = two_clients
    with dangerously_bypass_rls():
        own = OAuthApplication.objects.get(tenant=a)
        other = OAuthApplication.objects.get(tenant=b)
        first_party = OAuthApplication.objects.filter(tenant__isnull=True).first()
    insert = (
        "INSERT INTO tenants_oauthaccesstoken (client_id, application_id, token, token_checksum, expires, scope, "
        "resource, created, updated) "
        "VALUES (%s, %s, '', md5(random()::text) || md5(random()::text), now(), 'api', '[]', now(), now())"
    )
    for application, allowed in ((own, True), (first_party, True), (other, False)):
        for alias in ("app", "service"):
            def attempt(alias=alias, application=application):
                with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                    if alias == "app":
                        apply_client_setting(connections[alias], a.pk)
                    cursor.execute(insert, [a.pk, application.pk])
                    transaction.set_rollback(True, using=alias)

            if allowed:
                attempt()
            else:
                with pytest.raises(DatabaseError, match="is not an application of this client"):
                    attempt()


def test_the_app_role_cannot_rewrite_its_audit_log_or_its_clients_status(two_clients):
    a, _ = two_clients
    for statement in (
        "UPDATE tenants_auditevent SET action = 'nothing.happened'",
        "DELETE FROM tenants_auditevent",
        "UPDATE tenants_client SET status = 'active', products = '{}'",
        "SELECT count(*) FROM django_admin_log",
    ):
        with pytest.raises(DatabaseError, match="permission denied"):
            app_execute(a.pk, statement)
    with transaction.atomic(using="app"), connections["app"].cursor() as cursor:
        apply_client_setting(connections["app"], a.pk)
        cursor.execute("UPDATE tenants_client SET name = 'Alpha renamed'")
        assert cursor.rowcount == 1


def test_the_app_role_reads_first_party_applications_but_cannot_change_or_delete_them(two_clients):
    """Every client's users sign in through the first-party application, so a
    client that could rewrite or delete it would break sign-in for all."""
    a, _ = two_clients
    with transaction.atomic(using="app"), connections["app"].cursor() as cursor:
        apply_client_setting(connections["app"], a.pk)
        cursor.execute("SELECT count(*) FROM tenants_oauthapplication WHERE tenant_id IS NULL")
        assert cursor.fetchone()[0] >= 1
        cursor.execute("UPDATE tenants_oauthapplication SET redirect_uris = 'https://evil.example/cb' WHERE tenant_id IS NULL")
        assert cursor.rowcount == 0
        cursor.execute("DELETE FROM tenants_oauthapplication WHERE tenant_id IS NULL")
        assert cursor.rowcount == 0
        cursor.execute("UPDATE tenants_oauthapplication SET tenant_id = %s WHERE tenant_id IS NULL", [a.pk])
        assert cursor.rowcount == 0


def test_the_app_role_cannot_read_sequence_values_or_write_djangos_catalogs(two_clients):
    a, _ = two_clients
    for statement in (
        "SELECT last_value FROM tenancy_probe_probenote_id_seq",
        "INSERT INTO auth_group (name) VALUES ('drop box')",
        "UPDATE django_content_type SET model = model",
    ):
        with pytest.raises(DatabaseError, match="permission denied"):
            app_execute(a.pk, statement)


def test_emails_are_unique_across_clients_without_an_index_the_app_role_can_probe(two_clients):
    """Global email uniqueness lives in app.global_key, which no runtime
    role can read (or EXPLAIN); the user table has no index on the email
    that a range condition could scan before RLS filters the rows."""
    a, b = two_clients
    with pytest.raises(DatabaseError, match="this email is already taken") as refused:
        with dangerously_bypass_rls():
            make_user(client=b, email="ADMIN@alpha.test")
    assert "alpha" not in str(refused.value).split("\n", 1)[-1]  # no DETAIL naming the row
    for statement in ("SELECT count(*) FROM app.global_key", "EXPLAIN SELECT * FROM app.global_key"):
        with pytest.raises(DatabaseError, match="permission denied"):
            app_execute(a.pk, statement)
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'tenants_user' AND indexdef ILIKE '%%email%%'"
        )
        assert [row[0] for row in cursor.fetchall() if "(client_id" not in row[0]] == []
    # Sign-in still finds the account by email, in any case.
    from tenants.auth import identity_by_email

    assert identity_by_email("Admin@Bravo.test").client_id == b.pk


def test_changing_an_email_keeps_it_unique_and_findable(two_clients):
    from tenants.auth import identity_by_email
    from tenants.models import User

    a, _ = two_clients
    with dangerously_bypass_rls():
        user = User.objects.get(email="admin@alpha.test")
        user.email = "renamed@alpha.test"
        user.save(update_fields=["email"])
    assert identity_by_email("admin@alpha.test") is None
    assert identity_by_email("renamed@alpha.test").user_id == user.pk
    with pytest.raises(DatabaseError, match="already taken"):
        with dangerously_bypass_rls():
            User.objects.filter(pk=user.pk).update(email="admin@bravo.test")


def test_client_slugs_are_unique_without_an_index_the_app_role_can_probe(two_clients):
    a, _ = two_clients
    with pytest.raises(DatabaseError, match="this client slug is already taken"):
        with dangerously_bypass_rls():
            make_client(slug="bravo")
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'tenants_client' AND indexdef ILIKE '%%slug%%'")
        assert cursor.fetchall() == []


def test_the_app_role_cannot_choose_ids_or_write_users(two_clients):
    """Ids come from counters shared by every client: taking other clients'
    next ids would make their inserts fail. And no client-facing code writes
    users, so SQL cannot test or squat other clients' emails through the
    uniqueness of the email."""
    a, _ = two_clients
    for statement in (
        "INSERT INTO tenants_auditevent (id, public_id, client_id, actor_label, action, target, metadata, ip, created_at) "
        "VALUES (nextval(pg_get_serial_sequence('tenants_auditevent', 'id')) + 1, gen_random_uuid(), "
        "app.current_client_id(), '', 'x', '', '{}', NULL, now())",
        "UPDATE tenancy_probe_probenote SET id = id + 1000",
        "INSERT INTO tenants_user (email, password, full_name, role, client_id, is_active, date_joined, public_id, "
        "session_epoch) VALUES ('ceo@bravo.test', '', '', 'client_admin', app.current_client_id(), false, now(), "
        "gen_random_uuid(), 0)",
        "UPDATE tenants_user SET email = 'ceo@bravo.test'",
    ):
        with pytest.raises(DatabaseError, match="permission denied"):
            app_execute(a.pk, statement)
    # Ordinary inserts, with the id from the counter, still work.
    app_execute(a.pk, "INSERT INTO tenancy_probe_probenote (client_id, public_id, title) "
                      "VALUES (app.current_client_id(), gen_random_uuid(), 'fine')")
