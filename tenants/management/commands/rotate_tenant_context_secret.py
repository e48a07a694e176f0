from argparse import ArgumentTypeError

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

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
        parser.add_argument(
            "--reinstate", action="store_true",
            help="Allow TENANT_CONTEXT_SECRET to be a key that an earlier rotation retired (going back to it).",
        )

    def handle(self, *args, overlap_minutes, reinstate, **options):
        try:
            result = context_proof.install_key(
                connections["default"], key=context_proof.secret(), retire_others_after_seconds=overlap_minutes * 60,
                reinstate=reinstate,
            )
        except context_proof.TenantContextKeyError as error:
            raise CommandError(str(error)) from None
        if result["installed"]:
            state = "installed"
        elif result["reinstated"]:
            state = "reinstated"
        else:
            state = "already installed"
        retiring = f"{result['retired']} older key(s) retire in {overlap_minutes} min."
        self.stdout.write(self.style.SUCCESS(f"Key {result['fingerprint']} {state}; {retiring}"))
        for fingerprint, expires_at in result["keys"]:
            validity = "valid" if expires_at is None else f"expires {expires_at:%Y-%m-%d %H:%M:%S %Z}"
            self.stdout.write(f"  {fingerprint}  {validity}")
