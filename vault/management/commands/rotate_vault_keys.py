from django.core.management.base import CommandError
from tqdm import tqdm

from tenants.management.base import OperatorCommand
from vault.rotation import count_values, rotate


class Command(OperatorCommand):
    atomic = False  # each batch commits on its own, so an interrupted run keeps its work
    help = (
        "Re-encrypt every vault value with the first key of VAULT_KEYS. Resumable and idempotent: values that "
        "already open with the first key are skipped. Afterwards the old keys can be removed from VAULT_KEYS."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument(
            "--max-batches", type=int, default=None,
            help="Stop after this many batches (a later run continues where this one stopped).",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (for logs).")

    def handle(self, *args, batch_size, max_batches, no_progress, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        with tqdm(total=count_values(), unit="row", disable=no_progress, file=self.stderr) as bar:
            report = rotate(batch_size=batch_size, max_batches=max_batches, actor=self.operator(), progress=bar.update)
        self.stdout.write(
            f"scanned {report.scanned}, re-encrypted {report.reencrypted}, already current {report.current}, "
            f"unreadable {len(report.unreadable)}, clients touched {len(report.per_client)}"
        )
        if not report.finished:
            self.stdout.write("Stopped after --max-batches; run again to continue.")
        if report.unreadable:
            shown = ", ".join(report.unreadable[:20])
            raise CommandError(f"{len(report.unreadable)} value(s) open with no configured key: {shown}")
        if report.finished:
            self.stdout.write(self.style.SUCCESS("Every vault value is under the first key."))
