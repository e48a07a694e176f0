import os

from django.core.management.base import CommandError

from tenants.management.base import OperatorCommand
from vault.legacy import LegacyImportError, parse_legacy_key, read_rows
from vault.services import credential_set


class Command(OperatorCommand):
    help = (
        "Import credentials exported from the previous Node.js API: a CSV with the header "
        "client_slug,provider,label,value where value is iv:ciphertext:tag (base64, aes-256-gcm, no associated "
        "data). The legacy key is read from an environment variable, as 64 hex characters or base64. "
        "All rows are imported, or none."
    )

    def add_arguments(self, parser):
        parser.add_argument("csv_path")
        parser.add_argument("--key-env", default="LEGACY_VAULT_KEY", help="Variable holding the legacy key.")
        parser.add_argument("--dry-run", action="store_true", help="Check every row, write nothing.")

    def handle(self, *args, csv_path, key_env, dry_run, **options):
        try:
            key = parse_legacy_key(os.environ.get(key_env, ""), variable=key_env)
            with open(csv_path, newline="", encoding="utf-8") as handle:
                rows = read_rows(handle, key=key)
        except OSError as error:
            raise CommandError(f"cannot read {csv_path}: {error.strerror}") from None
        except LegacyImportError as error:
            raise CommandError(f"{csv_path}: {error}; nothing was imported.") from None
        if dry_run:
            self.stdout.write(f"{len(rows)} row(s) would be imported.")
            return
        for row in rows:
            credential_set(
                client_id=row.client.pk, provider=row.provider, label=row.label, secret=row.secret,
                actor=self.operator(), reason="imported from the legacy API",
            )
        self.stdout.write(self.style.SUCCESS(f"Imported {len(rows)} credential(s)."))
