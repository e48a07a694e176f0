from tenants.management.base import OperatorCommand
from tenants.services import oauth_first_party_app_create


class Command(OperatorCommand):
    help = (
        "Register the browser front end: a public OAuth client (authorization code with PKCE, S256) "
        "that every client's users sign in through."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--redirect-uri", action="append", dest="redirect_uris", required=True,
            help="Exact redirect URI; repeat for several.",
        )
        parser.add_argument(
            "--allowed-origin", action="append", dest="allowed_origins", default=[],
            help="Browser origin (scheme://host[:port]) allowed to call the token endpoint and API; repeat for several.",
        )

    def handle(self, *args, name, redirect_uris, allowed_origins, **options):
        application = oauth_first_party_app_create(
            name=name, redirect_uris=redirect_uris, allowed_origins=allowed_origins, actor=self.operator()
        )
        self.stdout.write(self.style.SUCCESS(f"Registered {application.name}."))
        self.stdout.write(f"client_id: {application.client_id}")
