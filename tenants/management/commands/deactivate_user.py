from tenants.management.base import OperatorCommand
from tenants.services import user_set_active


class Command(OperatorCommand):
    help = "Deactivate a user: they can no longer log in; their history stays."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)

    def handle(self, *args, email, **options):
        user = user_set_active(user=self.user_by_email(email), is_active=False, actor=self.operator())
        self.stdout.write(self.style.SUCCESS(f"{user.email} is deactivated."))
