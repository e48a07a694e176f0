import getpass

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from tenants.management.base import OperatorCommand
from tenants.models import Role, User
from tenants.services import generate_password, user_create


class Command(OperatorCommand):
    help = "Create a user. Prompts for a password, or generates and prints one with --no-input."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--role", required=True, help=f"One of: {', '.join(Role.values)}.")
        parser.add_argument("--client", help="Client slug; required for client_admin, refused for staff roles.")
        parser.add_argument("--full-name", default="")
        parser.add_argument(
            "--no-input", action="store_false", dest="interactive",
            help="Do not prompt: generate a password and print it once.",
        )

    def handle(self, *args, email, role, client, full_name, interactive, **options):
        client_obj = self.client_by_slug(client)
        generated = False
        password = self._prompt_password(email) if interactive else None
        if password is None:
            password, generated = generate_password(), True
        user = user_create(
            email=email, role=role, client=client_obj, password=password, full_name=full_name,
            actor=self.operator(),
        )
        self.stdout.write(self.style.SUCCESS(f"Created {user.role} {user.email}."))
        if generated:
            # Shown once, to the operator who asked for it; never logged.
            self.stdout.write(f"Password: {password}")

    def _prompt_password(self, email: str) -> str | None:
        while True:
            try:
                password = getpass.getpass("Password (leave empty to generate one): ")
            except (EOFError, KeyboardInterrupt):
                raise CommandError("Cancelled; nothing was created.") from None
            if not password:
                return None
            if getpass.getpass("Password (again): ") != password:
                self.stderr.write("Passwords do not match.")
                continue
            try:
                validate_password(password, User(email=email))
            except ValidationError as error:
                self.stderr.write(" ".join(error.messages))
                continue
            return password
