import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from sagerock.api.pagination import CreatedAtCursorPagination
from sagerock.api.permissions import IsClientAdminUser, IsClientPrincipal, IsStaff
from sagerock.api.views import TenantScopedViewSet
from sagerock.ratelimits import client_ip
from tenants import services
from tenants.api import serializers as s
from tenants.models import AuditEvent, Client, OAuthApplication


class MeView(APIView):
    """Who the token acts as: a user or a client's own application, its role and client."""

    @extend_schema(responses=s.MeSerializer)
    def get(self, request):
        principal = request.user
        is_application = getattr(principal, "role", None) == "client_application"
        data = {
            "kind": "application" if is_application else "user",
            "role": principal.role,
            "user": None if is_application else s.UserSummarySerializer(principal).data,
            "application": s.ApplicationSummarySerializer(principal.application).data if is_application else None,
            "client": s.ClientSerializer(principal.client).data if principal.client is not None else None,
        }
        return Response(data)


class OwnClientView(APIView):
    """The caller's own organization. Staff have none: they use /clients/."""

    permission_classes = [IsClientPrincipal]

    def _client(self, request) -> Client:
        return Client.objects.get(pk=request.user.client_id)

    @extend_schema(responses=s.ClientSerializer)
    def get(self, request):
        return Response(s.ClientSerializer(self._client(request)).data)

    @extend_schema(request=s.ClientProfileInputSerializer, responses=s.ClientSerializer)
    def patch(self, request):
        if getattr(request.user, "role", None) == "client_application":
            raise PermissionDenied("Applications cannot change the organization profile.")
        payload = s.ClientProfileInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        client = services.client_profile_update(
            client=self._client(request), name=payload.validated_data["name"], actor=request.user,
            ip=client_ip(request),
        )
        return Response(s.ClientSerializer(client).data)


class ClientFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Client.Status.choices)
    slug = django_filters.CharFilter()

    class Meta:
        model = Client
        fields = ["status", "slug"]


class ClientsViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Staff only: every client organization."""

    queryset = Client.objects.all()
    serializer_class = s.ClientSerializer
    permission_classes = [IsStaff]
    filterset_class = ClientFilter
    tenant_field = "id"

    @extend_schema(request=s.StaffClientInputSerializer, responses=s.ClientSerializer)
    def partial_update(self, request, public_id=None):
        client = self.get_object()
        payload = s.StaffClientInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        client = services.client_update_by_staff(
            client=client, changes=payload.validated_data, actor=request.user, ip=client_ip(request)
        )
        return Response(s.ClientSerializer(client).data)


class AuditEventFilter(django_filters.FilterSet):
    client = django_filters.UUIDFilter(field_name="client__public_id", help_text="Staff only: one client's events.")
    action = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = AuditEvent
        fields = ["client", "action", "since"]


class AuditEventViewSet(mixins.ListModelMixin, TenantScopedViewSet):
    """The audit log: a client_admin reads their client's events; staff read
    every client's. Application tokens act as machines, not administrators,
    and may not read it."""

    queryset = AuditEvent.objects.select_related("client")
    serializer_class = s.AuditEventSerializer
    permission_classes = [IsClientAdminUser | IsStaff]
    filterset_class = AuditEventFilter


class ApiApplicationViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, TenantScopedViewSet):
    """Server-to-server applications (OAuth client credentials) of the caller's client."""

    queryset = OAuthApplication.objects.filter(authorization_grant_type=OAuthApplication.GRANT_CLIENT_CREDENTIALS)
    serializer_class = s.ApiApplicationSerializer
    permission_classes = [IsClientAdminUser]
    lookup_field = "client_id"
    lookup_value_regex = "[A-Za-z0-9]{1,100}"
    tenant_field = "tenant_id"
    filter_backends = []
    pagination_class = CreatedAtCursorPagination

    @extend_schema(request=s.ApiApplicationCreateInputSerializer, responses={201: s.ApiApplicationCreatedSerializer})
    def create(self, request):
        payload = s.ApiApplicationCreateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        application, secret = services.api_application_create(
            client_id=request.user.client_id, name=payload.validated_data["name"], actor=request.user,
            ip=client_ip(request),
        )
        body = {
            "id": application.client_id,
            "name": application.name,
            "client_secret": secret,
            "token_url": request.build_absolute_uri("/oauth/token/"),
        }
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.api_application_revoke(application=instance, actor=self.request.user, ip=client_ip(self.request))


