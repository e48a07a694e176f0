"""django-oauth-toolkit's models, made tenant tables.

Every token, grant and API application belongs to a client (`client_id` on
tokens and grants, `tenant_id` on applications, whose `client_id` column is
the OAuth client identifier). NULL means a staff user's token (staff belong
to no client) or a first-party application shared by every client (the
browser front end registered with `create_oauth_app`).

Tokens are stored only as SHA-256 checksums (RFC 9700 token storage); client
secrets are hashed. A leaked table gives nobody a usable credential.
"""

from django.db import models
from oauth2_provider.models import (
    AbstractAccessToken,
    AbstractApplication,
    AbstractDeviceGrant,
    AbstractGrant,
    AbstractIDToken,
    AbstractRefreshToken,
)

from tenants.models import Client


class OAuthApplication(AbstractApplication):
    tenant = models.ForeignKey(
        Client,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="api_applications",
        help_text="The client this server-to-server application acts for; empty for a first-party app.",
    )

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"
        verbose_name = "OAuth application"


def _owner_client_id(user, application) -> int | None:
    if user is not None:
        return user.client_id
    if application is not None:
        return application.tenant_id
    return None


class _ClientOwned(models.Model):
    """A token or grant carries the client of the user (or, for client
    credentials, of the application) it was issued to."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True, editable=False, related_name="+")

    class Meta:
        abstract = True

    def __str__(self) -> str:
        # Never the token or code itself.
        return f"{self._meta.verbose_name} {self.pk}"

    def save(self, *args, **kwargs):
        self.client_id = _owner_client_id(getattr(self, "user", None), getattr(self, "application", None))
        super().save(*args, **kwargs)


class OAuthGrant(_ClientOwned, AbstractGrant):
    class Meta(AbstractGrant.Meta):
        swappable = "OAUTH2_PROVIDER_GRANT_MODEL"


class OAuthIDToken(_ClientOwned, AbstractIDToken):
    class Meta(AbstractIDToken.Meta):
        swappable = "OAUTH2_PROVIDER_ID_TOKEN_MODEL"


class OAuthAccessToken(_ClientOwned, AbstractAccessToken):
    class Meta(AbstractAccessToken.Meta):
        swappable = "OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL"


class OAuthRefreshToken(_ClientOwned, AbstractRefreshToken):
    class Meta(AbstractRefreshToken.Meta):
        swappable = "OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL"


class OAuthDeviceGrant(_ClientOwned, AbstractDeviceGrant):
    """The device flow is not offered; the table exists because the toolkit
    swaps all of its models together."""

    class Meta(AbstractDeviceGrant.Meta):
        swappable = "OAUTH2_PROVIDER_DEVICE_GRANT_MODEL"
