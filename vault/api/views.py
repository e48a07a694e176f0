from django.core.exceptions import ValidationError as DjangoValidationError
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from sagerock.api.permissions import IsClientAdminUser
from sagerock.api.views import TenantScopedViewSet
from sagerock.ratelimits import client_ip
from vault import services
from vault.api.serializers import CredentialInputSerializer, CredentialSerializer
from vault.models import IntegrationCredential


class CredentialViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantScopedViewSet):
    """A client's third-party credentials. The secret is write-only: answers
    carry provider, label, fingerprint, settings and timestamps."""

    queryset = IntegrationCredential.objects.defer("secret")
    serializer_class = CredentialSerializer
    permission_classes = [IsClientAdminUser]
    filterset_fields = ["provider"]

    @extend_schema(
        request=CredentialInputSerializer,
        responses={201: CredentialSerializer, 200: CredentialSerializer},
        description="Create a credential, or replace the one with the same provider and label.",
    )
    @sensitive_variables("payload", "data")
    def create(self, request):
        payload = CredentialInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        existed = IntegrationCredential.objects.filter(
            client_id=request.user.client_id, provider=data["provider"], label=data["label"]
        ).exists()
        try:
            credential = services.credential_set(
                client_id=request.user.client_id, provider=data["provider"], label=data["label"],
                secret=data["secret"], settings=data["settings"], actor=request.user, reason=data["reason"],
                ip=client_ip(request),
            )
        except DjangoValidationError as error:
            raise ValidationError(error.message_dict) from None
        return Response(
            CredentialSerializer(credential).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        )

    def perform_destroy(self, instance):
        services.credential_delete(
            credential=instance, actor=self.request.user, reason="deleted through the API", ip=client_ip(self.request)
        )
