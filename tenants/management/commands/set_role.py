from tenants.management.base import OperatorCommand
from tenants.models import Role
from tenants.services import user_set_role


class Command(OperatorCommand):
    help = "Change a user's role (and client, for client_admin)."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--role", required=True, help=f"One of: {', '.join(Role.values)}.")
        parser.add_argument("--client", help="Client slug; required for client_admin, refused for staff roles.")

    def handle(self, *args, email, role, client, **options):
        user = self.user_by_email(email)
        client_obj = self.client_by_slug(client)
        user = user_set_role(user=user, role=role, client=client_obj, actor=self.operator())
        suffix = f" of {client_obj.slug}" if client_obj else ""
        self.stdout.write(self.style.SUCCESS(f"{user.email} is now {user.role}{suffix}."))
