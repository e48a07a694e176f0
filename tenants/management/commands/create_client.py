from tenants.management.base import OperatorCommand
from tenants.models import Product
from tenants.services import client_create


class Command(OperatorCommand):
    help = "Create a client organization."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Display name, e.g. 'Lakeside Academy'.")
        parser.add_argument("--slug", required=True, help="Short unique name used in commands and URLs.")
        parser.add_argument(
            "--products", nargs="*", default=[], metavar="PRODUCT",
            help=f"Products to enable: {', '.join(p.value for p in Product)}.",
        )

    def handle(self, *args, name, slug, products, **options):
        client = client_create(name=name, slug=slug, products=products, actor=self.operator())
        self.stdout.write(self.style.SUCCESS(f"Created client {client.slug} ({client.public_id})."))
