"""What the vault's encryption costs.

Prints, for a 64-byte secret:
  - encryptions and decryptions per second with a bare AESGCM call;
  - the same through vault.crypto (keyring, IV, stored format, parsing);
  - the same through the field (IntegrationCredential.secret: JSON, the row's
    associated data, Secret binding), which is what every save and reveal pays;
  - 10,000 rows written and read back through the ORM (bulk insert in one
    client's context, then every value revealed);
  - the ratio of the field's encrypt and decrypt cost to a bare AESGCM call.

Uses a throw-away client in the local database (after `make services`) and
deletes it afterwards. Usage: .venv/bin/python bench/vault.py [--rows 10000]
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sagerock.settings")
SECRET = b"sk-bench-" + b"x" * 55  # 64 bytes


def rate(fn, seconds: float = 1.0) -> float:
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(200):
            fn()
        count += 200
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()

    import django

    django.setup()
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from django.test.utils import override_settings

    from tenants.context import dangerously_bypass_rls, tenant_context
    from tenants.models import Client
    from vault import crypto
    from vault.fields import Sealed
    from vault.models import IntegrationCredential

    key = os.urandom(32)
    with override_settings(VAULT_KEYS=base64.b64encode(key).decode()):
        aead = AESGCM(key)
        aad = crypto.associated_data(table="vault_integrationcredential", column="secret", client_id=1, row_id=str(uuid.uuid4()))
        nonce = os.urandom(12)
        sealed_bare = aead.encrypt(nonce, SECRET, aad)
        stored = crypto.encrypt(SECRET, aad=aad)

        bare_encrypt = rate(lambda: aead.encrypt(os.urandom(12), SECRET, aad))
        bare_decrypt = rate(lambda: aead.decrypt(nonce, sealed_bare, aad))
        crypto_encrypt = rate(lambda: crypto.encrypt(SECRET, aad=aad))
        crypto_decrypt = rate(lambda: crypto.decrypt(stored, aad=aad))

        # The field's own path on an unsaved row: what pre_save and reveal() do.
        field = IntegrationCredential._meta.get_field("secret")
        row = IntegrationCredential(client_id=1, provider="sendgrid", label="bench")
        value = {"api_key": SECRET.decode()}
        sealed_row = field.to_secret(value, row).seal()
        field_encrypt = rate(lambda: field.to_secret(value, row).seal())
        field_decrypt = rate(lambda: field.to_secret(Sealed(sealed_row), row).reveal())

        print("64-byte secret, operations per second (1 s each, one core)")
        print(f"  bare AESGCM encrypt                   {bare_encrypt:>12,.0f}")
        print(f"  bare AESGCM decrypt                   {bare_decrypt:>12,.0f}")
        print(f"  vault.crypto encrypt (IV, format)     {crypto_encrypt:>12,.0f}")
        print(f"  vault.crypto decrypt (parse, keyring) {crypto_decrypt:>12,.0f}")
        print(f"  field encrypt (JSON, row AAD, seal)   {field_encrypt:>12,.0f}")
        print(f"  field decrypt (row AAD, JSON)         {field_decrypt:>12,.0f}")
        print(f"  field encrypt cost / bare AESGCM encrypt: {bare_encrypt / field_encrypt:.2f}x")
        print(f"  field decrypt cost / bare AESGCM decrypt: {bare_decrypt / field_decrypt:.2f}x")

        slug = f"bench-vault-{uuid.uuid4().hex[:8]}"
        with dangerously_bypass_rls():
            client = Client.objects.create(name="Vault bench", slug=slug)
        try:
            rows = [
                IntegrationCredential(client=client, provider="sendgrid", label=f"k{n}", secret={"api_key": SECRET.decode()})
                for n in range(args.rows)
            ]
            start = time.perf_counter()
            with tenant_context(client.pk):
                IntegrationCredential.objects.bulk_create(rows, batch_size=1000)
            write = time.perf_counter() - start
            start = time.perf_counter()
            with tenant_context(client.pk):
                revealed = sum(1 for row in IntegrationCredential.objects.all() if row.secret.reveal()["api_key"])
            read = time.perf_counter() - start
            start = time.perf_counter()
            with tenant_context(client.pk):
                loaded = sum(1 for _ in IntegrationCredential.objects.defer("secret"))
            read_plain = time.perf_counter() - start
            assert revealed == loaded == args.rows
            print(f"\nORM, {args.rows:,} rows in one client's context")
            print(f"  bulk insert (encrypting each)      {write:6.2f} s  {args.rows / write:>10,.0f} rows/s")
            print(f"  read and reveal every secret       {read:6.2f} s  {args.rows / read:>10,.0f} rows/s")
            print(f"  read without the secret column     {read_plain:6.2f} s  {args.rows / read_plain:>10,.0f} rows/s")
        finally:
            with dangerously_bypass_rls():
                IntegrationCredential.objects.filter(client=client).delete()
                client.delete()


if __name__ == "__main__":
    main()
