import base64
import re

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from tenants.context import dangerously_bypass_rls, tenant_context
from tests.factories import ALL_DATABASES, make_client
from tests.tenancy_probe.models import ProbeSecretNote
from vault import crypto
from vault.keyring import KeyringError, parse_keyring
from vault.tests.conftest import new_key

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)

FORMAT = re.compile(r"^[A-Za-z0-9+/]+={0,2}:[A-Za-z0-9+/]*={0,2}:[A-Za-z0-9+/]+={0,2}$")
PLAINTEXT = "sk-live-0123456789abcdef0123456789abcdef0123456789abcdef01234567"  # 64 bytes


def stored_value(note) -> str:
    with connections["service"].cursor() as cursor:
        cursor.execute("SELECT secret FROM tenancy_probe_probesecretnote WHERE id = %s", [note.pk])
        return cursor.fetchone()[0]


def make_note(client, plaintext=PLAINTEXT):
    with tenant_context(client.pk):
        return ProbeSecretNote.objects.create(secret=plaintext)


def reload(note):
    with dangerously_bypass_rls():
        return ProbeSecretNote.objects.get(pk=note.pk)


def test_a_value_round_trips_and_only_reveal_shows_it(vault_key):
    note = make_note(make_client())
    loaded = reload(note)
    assert loaded.secret.reveal() == PLAINTEXT
    assert PLAINTEXT not in str(loaded.secret) + repr(loaded.secret) + repr(loaded)


def test_the_stored_string_has_the_exact_format_and_opens_with_a_plain_aesgcm_call(vault_key):
    client = make_client()
    note = make_note(client)
    stored = stored_value(note)
    assert FORMAT.match(stored) and PLAINTEXT not in stored
    iv, ciphertext, tag = (base64.b64decode(part, validate=True) for part in stored.split(":"))
    assert len(iv) == 12 and len(tag) == 16 and len(ciphertext) == len(PLAINTEXT.encode())
    aad = f"sagerock-vault:v1|tenancy_probe_probesecretnote|secret|{client.pk}|{note.public_id}".encode()
    assert AESGCM(base64.b64decode(vault_key)).decrypt(iv, ciphertext + tag, aad) == PLAINTEXT.encode()


def test_two_encryptions_of_the_same_value_differ(vault_key):
    client = make_client()
    first, second = make_note(client), make_note(client)
    assert stored_value(first) != stored_value(second)
    assert stored_value(first).split(":")[0] != stored_value(second).split(":")[0]


@pytest.mark.parametrize("part", [0, 1, 2])
def test_tampering_with_any_byte_of_any_part_gives_a_clear_error(vault_key, part):
    note = make_note(make_client())
    pieces = [bytearray(base64.b64decode(p)) for p in stored_value(note).split(":")]
    for index in range(len(pieces[part])):
        tampered = [bytes(p) for p in pieces]
        flipped = bytearray(tampered[part])
        flipped[index] ^= 0x01
        tampered[part] = bytes(flipped)
        value = ":".join(base64.b64encode(p).decode() for p in tampered)
        with pytest.raises(crypto.DecryptionError) as error:
            crypto.decrypt(value, aad=ProbeSecretNote._meta.get_field("secret").associated_data(note))
        assert PLAINTEXT not in str(error.value) and value not in str(error.value)


def test_changing_any_character_of_the_stored_string_gives_a_clear_error(vault_key):
    note = make_note(make_client())
    stored = stored_value(note)
    aad = ProbeSecretNote._meta.get_field("secret").associated_data(note)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    for index, char in enumerate(stored):
        # The next base64 letter: for a part's last character that may change
        # only bits base64 ignores, which must still be refused.
        replacement = alphabet[(alphabet.index(char) + 1) % 64] if char in alphabet else "A"
        value = stored[:index] + replacement + stored[index + 1 :]
        with pytest.raises(crypto.DecryptionError) as error:
            crypto.decrypt(value, aad=aad)
        assert PLAINTEXT not in str(error.value) and value not in str(error.value)
    assert crypto.decrypt(stored, aad=aad) == PLAINTEXT.encode()


def test_a_value_of_ours_with_a_16_byte_iv_is_refused_though_the_legacy_import_takes_one(vault_key):
    """AES-GCM opens other nonce sizes; the vault's own format is exactly 12."""
    note = make_note(make_client())
    aad = ProbeSecretNote._meta.get_field("secret").associated_data(note)
    iv = bytes(16)
    sealed = AESGCM(base64.b64decode(vault_key)).encrypt(iv, PLAINTEXT.encode(), aad)
    value = ":".join(base64.b64encode(p).decode() for p in (iv, sealed[:-16], sealed[-16:]))
    with pytest.raises(crypto.DecryptionError, match="IV must be 12 bytes and tag 16"):
        crypto.decrypt(value, aad=aad)
    assert crypto.decrypt(value, aad=aad, iv_lengths=(12, 16)) == PLAINTEXT.encode()


def test_a_value_swapped_into_another_row_or_client_does_not_open(vault_key):
    client_a, client_b = make_client(), make_client()
    a1, a2, b1 = make_note(client_a, "alpha-one"), make_note(client_a, "alpha-two"), make_note(client_b, "bravo-one")
    with connections["service"].cursor() as cursor:
        cursor.execute("UPDATE tenancy_probe_probesecretnote SET secret = %s WHERE id = %s", [stored_value(a1), a2.pk])
        cursor.execute("UPDATE tenancy_probe_probesecretnote SET secret = %s WHERE id = %s", [stored_value(a1), b1.pk])
    for victim in (a2, b1):
        with pytest.raises(crypto.DecryptionError, match="wrong key, tampered or moved"):
            reload(victim).secret.reveal()
    assert reload(a1).secret.reveal() == "alpha-one"


def test_a_wrong_key_gives_a_clear_error_never_plaintext(vault_key, settings):
    note = make_note(make_client())
    settings.VAULT_KEYS = new_key()
    with pytest.raises(crypto.DecryptionError) as error:
        reload(note).secret.reveal()
    assert PLAINTEXT not in str(error.value)


def test_plaintext_cannot_be_written_around_the_row_binding(vault_key):
    note = make_note(make_client())
    with pytest.raises(TypeError, match="encrypted per row"):
        with dangerously_bypass_rls():
            ProbeSecretNote.objects.filter(pk=note.pk).update(secret="sneaky")
    with pytest.raises(TypeError, match="encrypted per row"):
        with dangerously_bypass_rls():
            list(ProbeSecretNote.objects.filter(secret=PLAINTEXT))


def test_a_secret_cannot_be_pickled_into_a_cache_or_task(vault_key):
    import pickle

    note = reload(make_note(make_client()))
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(note.secret)


@pytest.mark.parametrize(
    "value, message",
    [
        ("", "VAULT_KEYS is not set"),
        ("not base64!!", "first key is not valid standard base64"),
        (base64.b64encode(b"short").decode(), "first key decodes to 5 bytes"),
        (new_key() + "," + base64.b64encode(b"x" * 16).decode(), "second key decodes to 16 bytes"),
    ],
)
def test_a_missing_short_or_malformed_key_is_refused_naming_the_variable_not_the_value(value, message):
    with pytest.raises(KeyringError, match=message) as error:
        parse_keyring(value)
    assert isinstance(error.value, ImproperlyConfigured)
    for part in filter(None, value.split(",")):
        assert part not in str(error.value)


def test_the_system_check_stops_start_up_on_a_bad_key(settings):
    from django.core import checks

    settings.VAULT_KEYS = "c2hvcnQ="
    errors = [m for m in checks.run_checks(tags=[checks.Tags.security]) if m.id == "vault.E001"]
    assert errors and "VAULT_KEYS" in errors[0].msg and "c2hvcnQ=" not in errors[0].msg


def test_the_keyring_never_shows_its_keys(vault_key):
    from vault.keyring import keyring

    assert vault_key not in repr(keyring()) and "1 key" in repr(keyring())


def test_the_first_use_with_a_bad_key_is_refused_naming_the_variable_not_the_value(settings):
    client = make_client()
    bad = base64.b64encode(b"only-16-bytes!!!").decode()
    settings.VAULT_KEYS = bad
    with pytest.raises(ImproperlyConfigured, match="VAULT_KEYS: the first key decodes to 16 bytes") as error:
        make_note(client)
    assert bad not in str(error.value)
    with dangerously_bypass_rls():
        assert not ProbeSecretNote.objects.exists()


def test_the_web_entry_point_refuses_to_start_with_a_bad_key():
    """gunicorn imports sagerock.wsgi: a bad VAULT_KEYS must stop it before it
    serves, with a message that names the variable and not the value."""
    import os
    import subprocess
    import sys

    bad = base64.b64encode(b"twenty-four-bytes-long!!").decode()
    result = subprocess.run(
        [sys.executable, "-c", "import sagerock.wsgi"],
        env={**os.environ, "VAULT_KEYS": bad}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "VAULT_KEYS: the first key decodes to 24 bytes" in result.stderr
    assert bad not in result.stderr + result.stdout


@pytest.mark.parametrize("load", ["deferred", "refreshed"])
def test_loading_a_deferred_or_refreshed_secret_gives_a_sealed_value_and_decrypts_nothing(vault_key, settings, load):
    note = make_note(make_client())
    with dangerously_bypass_rls():
        loaded = ProbeSecretNote.objects.defer("secret").get(pk=note.pk) if load == "deferred" else reload(note)
        # Under a key that cannot open it, any decryption would raise.
        settings.VAULT_KEYS = new_key()
        if load == "refreshed":
            loaded.refresh_from_db()
        secret = loaded.secret
    assert secret.sealed == stored_value(note)
    assert repr(secret) == "<Secret: encrypted>"
    assert PLAINTEXT not in repr(vars(loaded)) + repr(loaded)
    settings.VAULT_KEYS = vault_key
    assert secret.reveal() == PLAINTEXT
