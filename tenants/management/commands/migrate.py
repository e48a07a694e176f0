from django.core.management.commands.migrate import Command as MigrateCommand

from tenants.context import owner_context


class Command(MigrateCommand):
    """Django's migrate, with every ORM query routed to the owner role."""

    def handle(self, *args, **options):
        with owner_context():
            return super().handle(*args, **options)
