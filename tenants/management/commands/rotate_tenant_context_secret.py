from django.core.management.base import BaseCommand
from django.db import connections, transaction

from tenants import context_proof


class Command(BaseCommand):
    help = (
        "Install TENANT_CONTEXT_SECRET (the new key) in the database and retire every other key after an "
        "overlap, during which proofs made with either key are accepted. Runs as the owner role."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--overlap-minutes", type=int, default=15,
            help="How long the previous key stays valid (default 15; enough for running processes to restart).",
        )

    def handle(self, *args, overlap_minutes, **options):
        if overlap_minutes < 0:
            self.stderr.write("--overlap-minutes cannot be negative.")
            raise SystemExit(2)
        with transaction.atomic(using="default"):
            result = context_proof.install_key(
                connections["default"], key=context_proof.secret(), retire_others_after_seconds=overlap_minutes * 60
            )
        state = "installed" if result["installed"] else "already installed"
        retiring = f"{result['retired']} older key(s) retire in {overlap_minutes} min."
        self.stdout.write(self.style.SUCCESS(f"Key {result['fingerprint']} {state}; {retiring}"))
        for fingerprint, expires_at in result["keys"]:
            validity = "valid" if expires_at is None else f"expires {expires_at:%Y-%m-%d %H:%M:%S %Z}"
            self.stdout.write(f"  {fingerprint}  {validity}")
