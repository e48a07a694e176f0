import io
import secrets

import pytest
from django.core.management import call_command
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
