import base64
import io
import json
import logging
import subprocess
import sys
import threading
import time

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connections, transaction
from django.test import Client as HttpClient
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from tenants.context import apply_client_setting, dangerously_bypass_rls, tenant_context
from tenants.models import AuditEvent
from tests.factories import ALL_DATABASES, bearer, issue_token, make_client, make_user
from tests.tenancy_probe.models import ProbeSecretNote
from vault import crypto
from vault.models import IntegrationCredential
from vault.selectors import credential_get, credential_list
from vault.services import credential_delete, credential_reveal, credential_set
from vault.tests.conftest import new_key

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)

SENDGRID_KEY = "SG.fake-key-for-tests.0123456789abcdefghijklmnopqrstuvwxyz"
SALESFORCE = {
    "client_id": "3MVG9-consumer-key", "client_secret": "sf-secret-0123456789-9F3A", "refresh_token": "5Aep861-refresh"
}


def set_credential(client, actor="test", provider="sendgrid", label="default", secret=SENDGRID_KEY, settings=None):
    with tenant_context(client.pk):
        return credential_set(
            client_id=client.pk, provider=provider, label=label, secret=secret, settings=settings or {},
            actor=actor, reason="test",
        )


def all_credentials():
    with dangerously_bypass_rls():
        return list(IntegrationCredential.objects.order_by("pk"))


# --- services ---------------------------------------------------------------------------


def test_setting_a_credential_stores_a_fingerprint_and_an_audit_event_without_the_value(vault_key):
    client = make_client()
    credential = set_credential(client, settings={"sender": "news@example.com"})
    assert credential.fingerprint == SENDGRID_KEY[-4:]
    with dangerously_bypass_rls():
        event = AuditEvent.objects.get(action="credential.created")
    assert event.client_id == client.pk and event.metadata["fingerprint"] == SENDGRID_KEY[-4:]
    assert SENDGRID_KEY not in json.dumps(event.metadata) + event.target


def test_replacing_a_credential_keeps_one_row_and_records_the_rotation(vault_key):
    client = make_client()
    first = set_credential(client)
    second = set_credential(client, secret="SG.another-key-value-WXYZ")
    assert first.pk == second.pk and second.rotated_at is not None and second.fingerprint == "WXYZ"
    assert len(all_credentials()) == 1
    with tenant_context(client.pk):
        assert credential_reveal(credential=second, actor="gateway", purpose="send campaign") == {
            "api_key": "SG.another-key-value-WXYZ"
        }


def test_two_concurrent_creates_of_one_credential_end_as_create_then_replace(vault_key):
    """The second request's lookup runs before the first commits, so both try
    to insert; the loser's insert waits on the unique index and then replaces
    the winner's row instead of failing with a database error."""
    client = make_client()
    outcome = {}

    def second_request():
        try:
            outcome["credential"] = set_credential(client, secret="SG.second-request-key-2222")
        except Exception as error:  # reported to the test below
            outcome["error"] = error
        finally:
            connections.close_all()

    with tenant_context(client.pk):
        credential_set(
            client_id=client.pk, provider="sendgrid", label="default", secret="SG.first-request-key-1111",
            settings={}, actor="first", reason="test",
        )
        racer = threading.Thread(target=second_request)
        racer.start()
        _wait_until_a_backend_waits_for_a_lock()
    racer.join(timeout=10)
    assert "error" not in outcome, outcome.get("error")
    rows = all_credentials()
    assert len(rows) == 1 and rows[0].fingerprint == "2222" and rows[0].rotated_at is not None
    with dangerously_bypass_rls():
        actions = sorted(AuditEvent.objects.filter(client=client).values_list("action", flat=True))
    assert actions == ["credential.created", "credential.replaced"]


def _wait_until_a_backend_waits_for_a_lock(timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    with connections["service"].cursor() as cursor:
        while time.monotonic() < deadline:
            # pg_locks, unlike pg_stat_activity, shows other roles' waits.
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the second request never waited for the first one's insert")


def test_a_salesforce_credential_is_a_structured_secret(vault_key):
    client = make_client()
    credential = set_credential(
        client, provider="salesforce", secret=SALESFORCE, settings={"instance_url": "https://acme.my.salesforce.com"}
    )
    assert credential.fingerprint == "9F3A"
    with tenant_context(client.pk):
        assert credential_reveal(credential=credential, actor="gateway", purpose="sync contacts") == SALESFORCE


@pytest.mark.parametrize(
    "provider, secret, options, field",
    [
        ("mailchimp", "x", {}, "provider"),
        ("sendgrid", "", {}, "secret"),
        ("sendgrid", {"api_key": "k", "extra": "x"}, {}, "secret"),
        ("salesforce", "just-a-string", {}, "secret"),
        ("salesforce", {**SALESFORCE, "refresh_token": ""}, {}, "secret"),
        ("sendgrid", "SG.short-key", {}, "secret"),
        ("salesforce", {**SALESFORCE, "client_secret": "short-9F3A"}, {}, "secret"),
        ("sendgrid", SENDGRID_KEY, {"sender": "not-an-email"}, "settings"),
        ("sendgrid", SENDGRID_KEY, {"event_webhook_public_key": "bm90IGEga2V5"}, "settings"),
        ("salesforce", SALESFORCE, {"instance_url": "http://insecure.example"}, "settings"),
        ("anthropic", "sk-ant-api03-test-key-0000", {"temperature": 1}, "settings"),
        ("sendgrid", "x" * 5000, {}, "secret"),
    ],
)
def test_bad_input_is_refused_with_the_field_and_nothing_is_written(vault_key, provider, secret, options, field):
    client = make_client()
    with pytest.raises(ValidationError) as error:
        set_credential(client, provider=provider, secret=secret, settings=options)
    assert field in error.value.message_dict
    assert all_credentials() == []


@pytest.mark.parametrize(
    "instance_url, stored",
    [
        ("https://acme.my.salesforce.com", "https://acme.my.salesforce.com"),
        ("https://Acme.My.Salesforce.com/", "https://acme.my.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", "https://acme--uat.sandbox.my.salesforce.com"),
        ("https://na139.salesforce.com", "https://na139.salesforce.com"),
    ],
)
def test_a_salesforce_instance_url_on_a_salesforce_host_is_accepted(vault_key, instance_url, stored):
    credential = set_credential(
        make_client(), provider="salesforce", secret=SALESFORCE, settings={"instance_url": instance_url}
    )
    assert credential.settings["instance_url"] == stored


@pytest.mark.parametrize(
    "instance_url",
    [
        "https://attacker.example",
        "https://acme.my.salesforce.com.attacker.example",
        "https://attacker.example/acme.my.salesforce.com",
        "https://attacker-salesforce.com",
        "https://salesforce.com",
        "https://acme.my.salesforce.com.",
        "https://attacker.example@acme.my.salesforce.com",
        "https://attacker.example\\@acme.my.salesforce.com",
        "https://acme.my.salesforce.com:8443",
        "https://acme.my.salesforce.com/services/data?next=https://attacker.example",
        "http://acme.my.salesforce.com",
        "acme.my.salesforce.com",
        42,
    ],
)
def test_a_salesforce_instance_url_off_salesforce_is_refused_and_the_old_one_kept(vault_key, instance_url):
    client = make_client()
    set_credential(
        client, provider="salesforce", secret=SALESFORCE, settings={"instance_url": "https://acme.my.salesforce.com"}
    )
    with pytest.raises(ValidationError, match="instance_url must be your Salesforce instance"):
        with tenant_context(client.pk):
            credential_set(
                client_id=client.pk, provider="salesforce", secret=None, settings={"instance_url": instance_url},
                actor="test", reason="test",
            )
    assert all_credentials()[0].settings == {"instance_url": "https://acme.my.salesforce.com"}


def test_a_salesforce_login_url_with_user_info_or_a_port_is_refused(vault_key):
    for login_url in ("https://attacker.example\\@login.salesforce.com", "https://login.salesforce.com:8443"):
        with pytest.raises(ValidationError, match="login_url must be an https:// URL"):
            set_credential(make_client(), provider="salesforce", secret=SALESFORCE, settings={"login_url": login_url})
    credential = set_credential(
        make_client(), provider="salesforce", secret=SALESFORCE, settings={"login_url": "https://test.salesforce.com"}
    )
    assert credential.settings["login_url"] == "https://test.salesforce.com"


def test_a_real_sendgrid_webhook_key_is_accepted(vault_key):
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    key = base64.b64encode(public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).decode()
    credential = set_credential(make_client(), settings={"event_webhook_public_key": key})
    assert credential.settings["event_webhook_public_key"] == key


def test_reveal_and_delete_are_audited_with_who_and_why(vault_key):
    client = make_client()
    credential = set_credential(client)
    with tenant_context(client.pk):
        credential_reveal(credential=credential, actor="marketing.gateway", purpose="campaign 42")
        credential_delete(credential=credential, actor="ops", reason="key leaked")
    with dangerously_bypass_rls():
        events = {e.action: e for e in AuditEvent.objects.filter(client=client)}
    assert events["credential.revealed"].metadata["purpose"] == "campaign 42"
    assert events["credential.revealed"].actor_label == "marketing.gateway"
    assert events["credential.deleted"].metadata["reason"] == "key leaked"
    assert all_credentials() == []


def test_validation_errors_name_the_field_but_never_contain_the_secret(vault_key):
    client = make_client()
    attempts = [
        {"provider": "sendgrid", "secret": {"api_key": SENDGRID_KEY, "extra": SENDGRID_KEY}},
        {"provider": "salesforce", "secret": {**SALESFORCE, "client_secret": "tiny-9F3A"}},
        {"provider": "sendgrid", "secret": SENDGRID_KEY, "settings": {"sender": "nope"}},
        {"provider": "sendgrid", "secret": SENDGRID_KEY + "x" * 5000},
    ]
    for attempt in attempts:
        with pytest.raises(ValidationError) as error:
            set_credential(client, **attempt)
        shown = str(error.value) + repr(error.value)
        assert SENDGRID_KEY not in shown and "tiny-9F3A" not in shown and SALESFORCE["refresh_token"] not in shown


def test_an_error_report_from_inside_the_vault_shows_the_secret_only_as_stars(vault_key):
    client = make_client()
    try:
        with tenant_context(client.pk):
            credential_set(
                client_id=client.pk, provider="salesforce", secret=SALESFORCE, settings={"instance_url": "http://x"},
                actor="test", reason="test",
            )
    except ValidationError:
        # The HTML report is what an error e-mail carries: every frame's locals.
        report = ExceptionReporter(None, *sys.exc_info()).get_traceback_html()
    assert "credential_set" in report and "instance_url" in report
    for value in SALESFORCE.values():
        assert value not in report


def test_reading_a_listed_credentials_secret_decrypts_nothing_and_audits_nothing(vault_key, settings):
    """credential_list defers the secret: reading it afterwards loads the
    sealed value, so only credential_reveal (audited) ever decrypts."""
    client = make_client()
    set_credential(client)
    settings.VAULT_KEYS = new_key()  # any decryption would now raise
    with tenant_context(client.pk):
        credential = credential_list(client_id=client.pk).get()
        secret = credential.secret
    assert secret.sealed and repr(secret) == "<Secret: encrypted>"
    assert SENDGRID_KEY not in repr(vars(credential))
    with dangerously_bypass_rls():
        assert list(AuditEvent.objects.values_list("action", flat=True)) == ["credential.created"]
    settings.VAULT_KEYS = vault_key
    with tenant_context(client.pk):
        assert credential_reveal(credential=credential, actor="gateway", purpose="test") == {"api_key": SENDGRID_KEY}


# --- rotation -----------------------------------------------------------------------------


def test_rotation_interrupted_halfway_and_resumed_leaves_everything_readable_with_only_the_new_key(settings):
    old_key, new = new_key(), new_key()
    settings.VAULT_KEYS = old_key
    clients = [make_client() for _ in range(3)]
    for client in clients:
        for n in range(4):
            set_credential(client, label=f"k{n}", secret=f"SG.rotation-key-{client.pk}-{n}")
    settings.VAULT_KEYS = f"{new},{old_key}"

    out = io.StringIO()
    call_command("rotate_vault_keys", "--batch-size", "5", "--max-batches", "1", "--no-progress", stdout=out)
    assert "re-encrypted 5," in out.getvalue() and "run again" in out.getvalue()
    settings.VAULT_KEYS = new
    readable = 0
    for credential in all_credentials():
        try:
            credential.secret.reveal()
            readable += 1
        except crypto.DecryptionError:
            pass
    assert readable == 5

    settings.VAULT_KEYS = f"{new},{old_key}"
    out = io.StringIO()
    call_command("rotate_vault_keys", "--batch-size", "5", "--no-progress", stdout=out)
    assert "re-encrypted 7, already current 5" in out.getvalue()
    again = io.StringIO()
    call_command("rotate_vault_keys", "--no-progress", stdout=again)
    assert "re-encrypted 0, already current 12" in again.getvalue()

    settings.VAULT_KEYS = new
    for credential in all_credentials():
        assert credential.secret.reveal()["api_key"].startswith("SG.rotation-key-")
    with dangerously_bypass_rls():
        touched = set(AuditEvent.objects.filter(action="vault.keys_rotated").values_list("client_id", flat=True))
    assert touched == {c.pk for c in clients}


def test_rotation_reports_values_no_key_opens(settings):
    settings.VAULT_KEYS = new_key()
    set_credential(make_client())
    settings.VAULT_KEYS = new_key()
    with pytest.raises(CommandError, match="1 value\\(s\\) open with no configured key: vault.IntegrationCredential"):
        call_command("rotate_vault_keys", "--no-progress", stdout=io.StringIO())


REFUSE_UPDATES = """
CREATE FUNCTION public.vault_test_refuse_update() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'batch refused by the test'; END $$;
CREATE TRIGGER vault_test_refuse_update BEFORE UPDATE ON tenancy_probe_probesecretnote
FOR EACH ROW EXECUTE FUNCTION public.vault_test_refuse_update();
"""
ALLOW_UPDATES = """
DROP TRIGGER IF EXISTS vault_test_refuse_update ON tenancy_probe_probesecretnote;
DROP FUNCTION IF EXISTS public.vault_test_refuse_update();
"""


def test_rotation_stopped_by_a_failing_batch_keeps_and_audits_what_it_committed_and_a_rerun_finishes(settings):
    old_key, new = new_key(), new_key()
    settings.VAULT_KEYS = old_key
    rotated, blocked = make_client(), make_client()
    set_credential(rotated)
    with tenant_context(blocked.pk):
        note = ProbeSecretNote.objects.create(secret="probe-secret-value")
    settings.VAULT_KEYS = f"{new},{old_key}"
    # The database refuses the second table's batch, as a lost connection or
    # a lock timeout would, after the first table's batch has committed.
    with connections["default"].cursor() as cursor:
        cursor.execute(REFUSE_UPDATES)
    try:
        with pytest.raises(DatabaseError, match="batch refused by the test"):
            call_command("rotate_vault_keys", "--batch-size", "1", "--no-progress", stdout=io.StringIO())
    finally:
        with connections["default"].cursor() as cursor:
            cursor.execute(ALLOW_UPDATES)
    with dangerously_bypass_rls():
        audited = list(AuditEvent.objects.filter(action="vault.keys_rotated").values_list("client_id", flat=True))
        stopped_note = ProbeSecretNote.objects.get(pk=note.pk)
    assert audited == [rotated.pk]

    settings.VAULT_KEYS = new
    assert all_credentials()[0].secret.reveal() == {"api_key": SENDGRID_KEY}
    with pytest.raises(crypto.DecryptionError):
        stopped_note.secret.reveal()

    settings.VAULT_KEYS = f"{new},{old_key}"
    out = io.StringIO()
    call_command("rotate_vault_keys", "--batch-size", "1", "--no-progress", stdout=out)
    assert "re-encrypted 1, already current 1," in out.getvalue()
    settings.VAULT_KEYS = new
    with dangerously_bypass_rls():
        assert ProbeSecretNote.objects.get(pk=note.pk).secret.reveal() == "probe-secret-value"


# --- legacy import from the Node.js service ----------------------------------------------------

NODE_ENCRYPT = """
const crypto = require('crypto');
const key = Buffer.from(process.env.LEGACY_KEY_B64, 'base64');
for (const plaintext of JSON.parse(process.argv[1])) {
  const iv = crypto.randomBytes(Number(process.env.IV_BYTES));
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  console.log([iv, ciphertext, tag].map(b => b.toString('base64')).join(':'));
}
"""


def node_encrypt(key_b64: str, plaintexts: list[str], *, iv_bytes: int = 12) -> list[str]:
    result = subprocess.run(
        ["node", "-e", NODE_ENCRYPT, json.dumps(plaintexts)],
        env={"LEGACY_KEY_B64": key_b64, "IV_BYTES": str(iv_bytes), "PATH": "/usr/bin:/bin:/usr/local/bin"},
        capture_output=True, text=True, check=True, timeout=30,
    )
    return result.stdout.split()


@pytest.mark.parametrize("iv_bytes", [12, 16])
def test_values_encrypted_by_nodes_crypto_are_imported_and_rebound_to_their_rows(
    vault_key, tmp_path, monkeypatch, iv_bytes
):
    legacy_key = new_key()
    acme = make_client(slug="acme")
    sendgrid_value, salesforce_value = node_encrypt(legacy_key, [SENDGRID_KEY, json.dumps(SALESFORCE)], iv_bytes=iv_bytes)
    assert len(base64.b64decode(sendgrid_value.split(":")[0])) == iv_bytes
    csv_path = tmp_path / "legacy.csv"
    csv_path.write_text(
        "client_slug,provider,label,value\n"
        f"acme,sendgrid,default,{sendgrid_value}\n"
        f"acme,salesforce,crm,{salesforce_value}\n"
    )
    monkeypatch.setenv("LEGACY_VAULT_KEY", base64.b64decode(legacy_key).hex())
    out = io.StringIO()
    call_command("vault_import_legacy", str(csv_path), stdout=out)
    assert "Imported 2 credential(s)." in out.getvalue()
    by_provider = {c.provider: c for c in all_credentials()}
    assert by_provider["sendgrid"].secret.reveal() == {"api_key": SENDGRID_KEY}
    assert by_provider["salesforce"].secret.reveal() == SALESFORCE
    assert all(c.client_id == acme.pk for c in by_provider.values())
    stored = by_provider["sendgrid"].secret.sealed
    assert len(base64.b64decode(stored.split(":")[0])) == 12  # stored again in our own format
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(stored, aad=None)  # re-encrypted with associated data


def test_a_bad_legacy_row_imports_nothing_and_names_the_line(vault_key, tmp_path, monkeypatch):
    legacy_key = new_key()
    make_client(slug="acme")
    good, = node_encrypt(legacy_key, [SENDGRID_KEY])
    wrong, = node_encrypt(new_key(), [SENDGRID_KEY])
    csv_path = tmp_path / "legacy.csv"
    csv_path.write_text(f"client_slug,provider,label,value\nacme,sendgrid,a,{good}\nacme,sendgrid,b,{wrong}\n")
    monkeypatch.setenv("LEGACY_VAULT_KEY", legacy_key)
    with pytest.raises(CommandError, match="line 3: the value does not open with the legacy key; nothing was imported"):
        call_command("vault_import_legacy", str(csv_path), stdout=io.StringIO())
    assert all_credentials() == []
    csv_path.write_text(f"client_slug,provider,label,value\nnobody,sendgrid,a,{good}\n")
    with pytest.raises(CommandError, match="line 2: no client with slug 'nobody'"):
        call_command("vault_import_legacy", str(csv_path), stdout=io.StringIO())
    odd_iv, = node_encrypt(legacy_key, [SENDGRID_KEY], iv_bytes=24)
    csv_path.write_text(f"client_slug,provider,label,value\nacme,sendgrid,a,{odd_iv}\n")
    with pytest.raises(CommandError, match="line 2: the value does not open with the legacy key"):
        call_command("vault_import_legacy", str(csv_path), stdout=io.StringIO())
    monkeypatch.setenv("LEGACY_VAULT_KEY", "too-short")
    with pytest.raises(CommandError, match="LEGACY_VAULT_KEY is neither 64 hex characters nor standard base64"):
        call_command("vault_import_legacy", str(csv_path), stdout=io.StringIO())


# --- API ----------------------------------------------------------------------------------------


def api_post(token, payload):
    return HttpClient().post("/api/v1/credentials/", payload, content_type="application/json", **token)


def test_a_client_admin_creates_replaces_lists_and_deletes_credentials_and_never_sees_the_secret(vault_key):
    client = make_client()
    token = bearer(issue_token(make_user(client=client)))
    created = api_post(token, {"provider": "sendgrid", "secret": SENDGRID_KEY, "settings": {"sender": "a@b.co"}})
    assert created.status_code == 201
    replaced = api_post(token, {"provider": "sendgrid", "secret": "SG.replacement-ABCD"})
    assert replaced.status_code == 200 and replaced.json()["fingerprint"] == "ABCD"
    listed = HttpClient().get("/api/v1/credentials/", **token)
    detail = HttpClient().get(f"/api/v1/credentials/{created.json()['id']}/", **token)
    stored = all_credentials()[0].secret.sealed
    for response in (created, replaced, listed, detail):
        text = response.content.decode()
        assert SENDGRID_KEY not in text and "SG.replacement" not in text and stored not in text
        assert "secret\"" not in text.replace("\"fingerprint\"", "")
    assert listed.json()["results"][0]["provider"] == "sendgrid"
    deleted = HttpClient().delete(f"/api/v1/credentials/{created.json()['id']}/", **token)
    assert deleted.status_code == 204 and all_credentials() == []


@pytest.mark.parametrize(
    "payload",
    [{}, {"provider": "sendgrid"}, {"provider": "nope", "secret": "x"}, {"provider": "salesforce", "secret": "x"},
     {"provider": "sendgrid", "secret": "x", "settings": "not-a-dict"}],
)
def test_bad_credential_input_gets_400_in_the_error_shape_and_writes_nothing(vault_key, payload):
    token = bearer(issue_token(make_user(client=make_client())))
    response = api_post(token, payload)
    assert response.status_code == 400
    assert set(response.json()) == {"code", "detail", "fields"} and response.json()["fields"]
    assert all_credentials() == []


def test_client_a_cannot_list_replace_or_delete_client_bs_credentials(vault_key):
    client_a, client_b = make_client(), make_client()
    b_credential = set_credential(client_b)
    token_a = bearer(issue_token(make_user(client=client_a)))
    assert HttpClient().get("/api/v1/credentials/", **token_a).json()["results"] == []
    assert HttpClient().get(f"/api/v1/credentials/{b_credential.public_id}/", **token_a).status_code == 404
    assert HttpClient().delete(f"/api/v1/credentials/{b_credential.public_id}/", **token_a).status_code == 404
    assert api_post(token_a, {"provider": "sendgrid", "secret": "SG.from-client-a-AAAA"}).status_code == 201
    with dangerously_bypass_rls():
        mine = IntegrationCredential.objects.get(client=client_b)
    assert mine.fingerprint == SENDGRID_KEY[-4:] and mine.secret.reveal() == {"api_key": SENDGRID_KEY}


def test_in_client_as_context_the_services_cannot_list_replace_reveal_or_delete_bs_credentials(vault_key):
    client_a, client_b = make_client(), make_client()
    b_credential = set_credential(client_b)
    a_credential = set_credential(client_a, secret="SG.client-a-own-key-AAAA")
    with tenant_context(client_a.pk):
        assert [c.pk for c in credential_list(client_id=client_a.pk)] == [a_credential.pk]
        assert list(credential_list(client_id=client_b.pk)) == []
        assert credential_get(client_id=client_b.pk, provider="sendgrid") is None
        with pytest.raises(PermissionDenied):
            credential_set(
                client_id=client_b.pk, provider="sendgrid", secret="SG.written-by-client-a-0000", actor="a", reason="x"
            )
        with pytest.raises(PermissionDenied):
            credential_reveal(credential=b_credential, actor="a", purpose="x")
        with pytest.raises(PermissionDenied):
            credential_delete(credential=b_credential, actor="a", reason="x")
        # Even past the services, the ORM in A's context reaches none of B's rows.
        assert IntegrationCredential.objects.filter(pk=b_credential.pk).delete()[0] == 0
    with dangerously_bypass_rls():
        kept = IntegrationCredential.objects.get(pk=b_credential.pk)
        b_events = set(AuditEvent.objects.filter(client=client_b).values_list("action", flat=True))
    assert kept.secret.reveal() == {"api_key": SENDGRID_KEY} and kept.rotated_at is None
    assert b_events == {"credential.created"}


def test_client_a_cannot_read_or_change_bs_credentials_by_raw_sql(vault_key):
    client_a, client_b = make_client(), make_client()
    b_credential = set_credential(client_b)
    with transaction.atomic(using="app"), connections["app"].cursor() as cursor:
        apply_client_setting(connections["app"], client_a.pk)
        cursor.execute("SELECT count(*) FROM vault_integrationcredential")
        assert cursor.fetchone()[0] == 0
        cursor.execute("UPDATE vault_integrationcredential SET label = 'x' WHERE id = %s", [b_credential.pk])
        assert cursor.rowcount == 0
        cursor.execute("DELETE FROM vault_integrationcredential WHERE id = %s", [b_credential.pk])
        assert cursor.rowcount == 0
    with pytest.raises(DatabaseError, match="row-level security"):
        with transaction.atomic(using="app"), connections["app"].cursor() as cursor:
            apply_client_setting(connections["app"], client_a.pk)
            cursor.execute(
                "INSERT INTO vault_integrationcredential (client_id, public_id, provider, label, secret, settings, "
                "fingerprint, created_by_label, created_at) VALUES (%s, gen_random_uuid(), 'sendgrid', 'x', 'a:b:c', "
                "'{}', 'x', '', now())",
                [client_b.pk],
            )
    assert len(all_credentials()) == 1


def test_an_application_token_cannot_manage_credentials(vault_key):
    from tests.factories import make_api_application

    application, _ = make_api_application(make_client())
    token = bearer(issue_token(application=application))
    assert HttpClient().get("/api/v1/credentials/", **token).status_code == 403


# --- admin ------------------------------------------------------------------------------------


def test_staff_see_only_the_fingerprint_and_replace_the_secret_through_a_password_input(vault_key, super_admin):
    client = make_client()
    credential = set_credential(client)
    browser = HttpClient()
    browser.force_login(super_admin)
    listing = browser.get("/admin/vault/integrationcredential/").content.decode()
    change = browser.get(f"/admin/vault/integrationcredential/{credential.pk}/change/").content.decode()
    stored = all_credentials()[0].secret.sealed
    delete = browser.get(f"/admin/vault/integrationcredential/{credential.pk}/delete/").content.decode()
    history = browser.get(f"/admin/vault/integrationcredential/{credential.pk}/history/").content.decode()
    for page in (listing, change, delete, history):
        assert SENDGRID_KEY not in page and stored not in page and stored.split(":")[1] not in page
    assert f"•••• {SENDGRID_KEY[-4:]}" in listing
    assert 'type="password" name="new_secret"' in change and 'value="SG.' not in change
    response = browser.post(
        f"/admin/vault/integrationcredential/{credential.pk}/change/",
        {"provider": "sendgrid", "label": "default", "settings": "{}", "new_secret": "SG.rotated-by-staff-QQQQ",
         "reason": "rotated after leak"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    updated = all_credentials()[0]
    assert updated.fingerprint == "QQQQ" and updated.secret.reveal() == {"api_key": "SG.rotated-by-staff-QQQQ"}
    with dangerously_bypass_rls():
        event = AuditEvent.objects.get(action="credential.replaced")
    assert event.actor_id == super_admin.pk and event.metadata["reason"] == "rotated after leak"


def test_staff_change_settings_without_touching_the_secret(vault_key, super_admin):
    credential = set_credential(make_client())
    before = all_credentials()[0].secret.sealed
    browser = HttpClient()
    browser.force_login(super_admin)
    response = browser.post(
        f"/admin/vault/integrationcredential/{credential.pk}/change/",
        {"provider": "sendgrid", "label": "default", "settings": '{"sender": "news@example.com"}', "new_secret": "",
         "reason": "sender change"},
    )
    assert response.status_code == 302
    after = all_credentials()[0]
    assert after.secret.sealed == before and after.settings == {"sender": "news@example.com"}


# --- no secret in logs or exceptions ---------------------------------------------------------------


def test_a_full_set_reveal_rotate_cycle_logs_no_secret(settings, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    settings.VAULT_KEYS = first = new_key()
    client = make_client()
    credential = set_credential(client, provider="salesforce", secret=SALESFORCE)
    with tenant_context(client.pk):
        credential_reveal(credential=credential, actor="gateway", purpose="sync")
    settings.VAULT_KEYS = f"{new_key()},{first}"
    call_command("rotate_vault_keys", "--no-progress", stdout=io.StringIO(), stderr=io.StringIO())
    token = bearer(issue_token(make_user(client=client)))
    api_post(token, {"provider": "sendgrid", "secret": SENDGRID_KEY})
    api_post(token, {"provider": "sendgrid", "secret": {"api_key": SENDGRID_KEY, "oops": 1}})
    everything = "\n".join(record.getMessage() + str(record.args) + str(record.exc_info) for record in caplog.records)
    for value in (SENDGRID_KEY, *SALESFORCE.values(), first):
        assert value not in everything
    assert caplog.records  # the cycle did log (requests, checks); just never a secret


def test_staff_add_a_credential_for_a_client_in_the_admin(vault_key, staff_admin):
    client = make_client()
    browser = HttpClient()
    browser.force_login(staff_admin)
    add_page = browser.get("/admin/vault/integrationcredential/add/").content.decode()
    assert 'type="password" name="new_secret"' in add_page
    response = browser.post(
        "/admin/vault/integrationcredential/add/",
        {"for_client": client.pk, "provider": "anthropic", "label": "default", "settings": '{"model": "claude-x"}',
         "new_secret": "sk-ant-test-key-7777", "reason": "onboarding"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    credential = all_credentials()[0]
    assert (credential.client_id, credential.provider, credential.fingerprint) == (client.pk, "anthropic", "7777")
    missing = browser.post(
        "/admin/vault/integrationcredential/add/",
        {"for_client": client.pk, "provider": "sendgrid", "label": "x", "settings": "{}", "new_secret": "",
         "reason": "r"},
    )
    assert missing.status_code == 200 and len(all_credentials()) == 1


def test_a_mistake_in_the_admin_form_is_shown_on_the_form_and_writes_nothing(vault_key, super_admin):
    client = make_client()
    existing = set_credential(client)
    browser = HttpClient()
    browser.force_login(super_admin)
    mistakes = [
        ({"provider": "anthropic", "settings": '{"temperature": 1}', "new_secret": "sk-ant-api03-test-key-7777"},
         "settings"),
        ({"provider": "salesforce", "settings": "{}", "new_secret": '["not", "an", "object"]'}, "new_secret"),
        ({"provider": "sendgrid", "settings": "{}", "new_secret": "SG.short"}, "new_secret"),
        ({"provider": "sendgrid", "settings": "{}", "new_secret": "SG.would-replace-silently-ZZZZ"}, "label"),
    ]
    for data, field in mistakes:
        response = browser.post(
            "/admin/vault/integrationcredential/add/", {"for_client": client.pk, "label": "default", "reason": "r", **data}
        )
        assert response.status_code == 200
        assert field in response.context["adminform"].form.errors
        assert "SG.would-replace" not in response.content.decode()
    assert [(c.pk, c.fingerprint) for c in all_credentials()] == [(existing.pk, SENDGRID_KEY[-4:])]


def test_an_error_report_for_an_admin_form_hides_the_submitted_secret(vault_key, super_admin):
    browser = HttpClient()
    browser.force_login(super_admin)
    response = browser.post(
        "/admin/vault/integrationcredential/add/",
        {"for_client": make_client().pk, "provider": "sendgrid", "label": "default", "settings": "{}",
         "new_secret": SENDGRID_KEY, "reason": ""},
    )
    assert response.status_code == 200
    shown = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    assert shown["new_secret"] == "********************" and shown["provider"] == "sendgrid"
