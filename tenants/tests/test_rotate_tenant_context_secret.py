import io
import secrets

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections, transaction

from tenants import context_proof
from tenants.context import dangerously_bypass_rls
from tests.factories import ALL_DATABASES, make_client
from tests.tenancy_probe.models import ProbeNote

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)


@pytest.fixture
def restore_keys():
    yield
    with transaction.atomic(using="default"), connections["default"].cursor() as cursor:
        cursor.execute("DELETE FROM app.tenant_context_key")
        context_proof.install_key(connections["default"], key=context_proof.secret())


def count_with_proof(client_id: int, key: bytes) -> int:
    with transaction.atomic(using="app"), connections["app"].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), (extract(epoch FROM transaction_timestamp()) * 1000000)::bigint")
        pid, started = cursor.fetchone()
        cursor.execute(
            "SELECT set_config('app.client_id', %s, true), set_config('app.client_proof', %s, true)",
            [str(client_id), context_proof.proof(key, client_id, pid, started)],
        )
        cursor.execute("SELECT count(*) FROM tenancy_probe_probenote")
        return cursor.fetchone()[0]


def test_rotation_accepts_both_keys_during_the_overlap_then_only_the_new_one(restore_keys, settings):
    client = make_client()
    with dangerously_bypass_rls():
        ProbeNote.objects.create(client=client, title="n")
    old_key = context_proof.secret()
    new_secret = secrets.token_urlsafe(48)
    settings.TENANT_CONTEXT_SECRET = new_secret
    new_key = new_secret.encode()
    assert count_with_proof(client.pk, new_key) == 0  # not installed yet

    out = io.StringIO()
    call_command("rotate_tenant_context_secret", "--overlap-minutes", "10", stdout=out)
    assert f"Key {context_proof.fingerprint(new_key)} installed; 1 older key(s) retire in 10 min." in out.getvalue()
    assert new_secret not in out.getvalue() and settings.TENANT_CONTEXT_SECRET not in out.getvalue()
    assert count_with_proof(client.pk, old_key) == 1
    assert count_with_proof(client.pk, new_key) == 1

    call_command("rotate_tenant_context_secret", "--overlap-minutes", "0", stdout=io.StringIO())
    assert count_with_proof(client.pk, old_key) == 0
    assert count_with_proof(client.pk, new_key) == 1


def test_rotating_to_the_installed_key_changes_nothing(restore_keys):
    out = io.StringIO()
    call_command("rotate_tenant_context_secret", stdout=out)
    assert "already installed; 0 older key(s)" in out.getvalue()


def test_a_short_secret_stops_with_a_message_that_names_the_variable_not_the_value(settings):
    settings.TENANT_CONTEXT_SECRET = "short-secret"
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="TENANT_CONTEXT_SECRET") as error:
        context_proof.secret()
    assert "short-secret" not in str(error.value)


def key_expiry(key: bytes):
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT expires_at FROM app.tenant_context_key WHERE fingerprint = %s", [context_proof.fingerprint(key)]
        )
        row = cursor.fetchone()
    return row[0] if row else "absent"


@pytest.mark.parametrize("overlap", ["0", "10"], ids=["expired", "expiring"])
def test_migrate_with_a_retired_secret_stops_and_does_not_make_it_valid_again(overlap, restore_keys, settings):
    client = make_client()
    with dangerously_bypass_rls():
        ProbeNote.objects.create(client=client, title="n")
    old_secret = settings.TENANT_CONTEXT_SECRET
    settings.TENANT_CONTEXT_SECRET = secrets.token_urlsafe(48)
    call_command("rotate_tenant_context_secret", "--overlap-minutes", overlap, stdout=io.StringIO())
    settings.TENANT_CONTEXT_SECRET = old_secret  # a rollback deploy
    old_key = old_secret.encode()
    retired_at = key_expiry(old_key)

    with pytest.raises(CommandError, match="TENANT_CONTEXT_SECRET .* is retired") as error:
        call_command("migrate", verbosity=0)
    message = str(error.value)
    assert "Set TENANT_CONTEXT_SECRET to the current secret" in message
    assert "rotate_tenant_context_secret --reinstate" in message
    assert old_secret not in message
    assert key_expiry(old_key) == retired_at
    assert count_with_proof(client.pk, old_key) == (0 if overlap == "0" else 1)


def test_migrate_installs_no_second_key_beside_the_current_one(restore_keys, settings):
    settings.TENANT_CONTEXT_SECRET = secrets.token_urlsafe(48)
    with pytest.raises(CommandError, match="is not installed in the database, which already holds other keys") as error:
        call_command("migrate", verbosity=0)
    assert "rotate_tenant_context_secret" in str(error.value)
    assert settings.TENANT_CONTEXT_SECRET not in str(error.value)
    assert key_expiry(settings.TENANT_CONTEXT_SECRET.encode()) == "absent"


def test_migrate_installs_the_key_of_a_database_that_has_none(restore_keys):
    with connections["default"].cursor() as cursor:
        cursor.execute("DELETE FROM app.tenant_context_key")
    call_command("migrate", verbosity=0)
    assert key_expiry(context_proof.secret()) is None
    call_command("migrate", verbosity=0)  # and then leaves it alone
    assert key_expiry(context_proof.secret()) is None


def test_going_back_to_a_retired_key_needs_reinstate(restore_keys, settings):
    client = make_client()
    with dangerously_bypass_rls():
        ProbeNote.objects.create(client=client, title="n")
    old_secret = settings.TENANT_CONTEXT_SECRET
    new_secret = secrets.token_urlsafe(48)
    settings.TENANT_CONTEXT_SECRET = new_secret
    call_command("rotate_tenant_context_secret", "--overlap-minutes", "0", stdout=io.StringIO())
    settings.TENANT_CONTEXT_SECRET = old_secret

    with pytest.raises(CommandError, match="was retired .* pass --reinstate") as error:
        call_command("rotate_tenant_context_secret", "--overlap-minutes", "0", stdout=io.StringIO())
    assert old_secret not in str(error.value)
    assert count_with_proof(client.pk, old_secret.encode()) == 0
    assert count_with_proof(client.pk, new_secret.encode()) == 1  # nothing retired either

    out = io.StringIO()
    call_command("rotate_tenant_context_secret", "--overlap-minutes", "0", "--reinstate", stdout=out)
    assert f"Key {context_proof.fingerprint(old_secret.encode())} reinstated; 1 older key(s)" in out.getvalue()
    assert count_with_proof(client.pk, old_secret.encode()) == 1
    assert count_with_proof(client.pk, new_secret.encode()) == 0
