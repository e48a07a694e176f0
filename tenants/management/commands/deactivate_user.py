from tenants.management.base import OperatorCommand
from tenants.services import user_deactivate


class Command(OperatorCommand):
    help = "Deactivate a user: they can no longer log in; their history stays."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)

    def handle(self, *args, email, **options):
        user = user_deactivate(user=self.user_by_email(email), actor=self.operator())
        self.stdout.write(self.style.SUCCESS(f"{user.email} is deactivated."))
