from django.db.models import QuerySet

from vault.models import IntegrationCredential


def credential_list(*, client_id: int) -> QuerySet[IntegrationCredential]:
    return IntegrationCredential.objects.filter(client_id=client_id).defer("secret").order_by("provider", "label")


def credential_get(*, client_id: int, provider: str, label: str = "default") -> IntegrationCredential | None:
    return IntegrationCredential.objects.filter(client_id=client_id, provider=provider, label=label).first()
