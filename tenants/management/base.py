"""Shared plumbing for operator commands: they run as the service role (they
provision across clients), turn validation errors into one clear message and
a non-zero exit, and write nothing when they fail."""

import getpass

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.context import dangerously_bypass_rls
from tenants.models import Client, User


def validation_message(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
    return " ".join(error.messages)


def _storable(text: str) -> bool:
    # PostgreSQL text holds no NUL character: a value with one matches no row,
    # and as a query parameter it would be a DataError instead of "not found".
    return "\x00" not in text


class OperatorCommand(BaseCommand):
    # One transaction for the whole command: all or nothing. Long jobs that
    # commit in batches set this to False.
    atomic = True

    def execute(self, *args, **options):
        try:
            with dangerously_bypass_rls(atomic=self.atomic):
                return super().execute(*args, **options)
        except ValidationError as error:
            raise CommandError(validation_message(error)) from None

    def operator(self) -> str:
        try:
            return f"cli:{getpass.getuser()}"
        except (KeyError, OSError):
            return "cli"

    def client_by_slug(self, slug: str | None) -> Client | None:
        if slug is None:
            return None
        client = Client.objects.filter(slug=slug).first() if _storable(slug) else None
        if client is None:
            raise CommandError(f"No client with slug {slug!r}.")
        return client

    def user_by_email(self, email: str) -> User:
        email = (email or "").strip()
        user = User.objects.filter(email__iexact=email).first() if _storable(email) else None
        if user is None:
            raise CommandError(f"No user with email {email!r}.")
        return user
