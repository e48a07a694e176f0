from argparse import ArgumentTypeError

from django.core.management.base import BaseCommand
from django.db import connections, transaction

from tenants import context_proof

# Long enough for every process to restart with the new key; a longer overlap
# only keeps a retired (perhaps leaked) key valid.
MAX_OVERLAP_MINUTES = 7 * 24 * 60


def overlap_minutes(value: str) -> int:
    try:
        minutes = int(value)
    except ValueError:
        minutes = -1
    if not 0 <= minutes <= MAX_OVERLAP_MINUTES:
        raise ArgumentTypeError(f"give a whole number of minutes from 0 to {MAX_OVERLAP_MINUTES} (7 days), not {value!r}")
    return minutes


class Command(BaseCommand):
    help = (
        "Install TENANT_CONTEXT_SECRET (the new key) in the database and retire every other key after an "
        "overlap, during which proofs made with either key are accepted. Runs as the owner role."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--overlap-minutes", type=overlap_minutes, default=15,
            help="How long the previous key stays valid (default 15; enough for running processes to restart).",
        )

    def handle(self, *args, overlap_minutes, **options):
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
