from django.db import models
from django.utils import timezone

from tenants.models import TenantModel
from vault.fields import EncryptedJSONField


class Provider(models.TextChoices):
    SENDGRID = "sendgrid", "SendGrid"
    SALESFORCE = "salesforce", "Salesforce"
    ANTHROPIC = "anthropic", "Anthropic"


class IntegrationCredential(TenantModel):
    """One client's key for one third-party service.

    `secret` is encrypted (AES-256-GCM, bound to this row); its shape depends
    on the provider: {"api_key"} for SendGrid and Anthropic, {"client_id",
    "client_secret", "refresh_token"} for Salesforce. `settings` holds what is
    not secret (SendGrid sender and event-webhook public key, Salesforce
    instance URL, Anthropic model). `fingerprint` is the last four characters
    of the key, so people can tell keys apart without seeing them.
    """

    provider = models.CharField(max_length=16, choices=Provider.choices)
    label = models.CharField(max_length=100, default="default")
    secret = EncryptedJSONField()
    settings = models.JSONField(default=dict, blank=True)
    fingerprint = models.CharField(max_length=4, editable=False)
    created_by_id = models.BigIntegerField(null=True, blank=True, editable=False)
    created_by_label = models.CharField(max_length=254, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta(TenantModel.Meta):
        ordering = ["provider", "label"]
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(fields=["client", "provider", "label"], name="vault_credential_client_provider_label_uniq"),
            models.CheckConstraint(
                condition=models.Q(provider__in=[p.value for p in Provider]), name="vault_credential_provider_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} · {self.label} (…{self.fingerprint})"
