"""The staff admin: super_admin and admin only, queries as `sagerock_staff`
(SessionTenantContextMiddleware), login rate-limited per IP, and changes
recorded in the tenant-scoped audit log instead of django_admin_log."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.utils.decorators import method_decorator

from sagerock.ratelimits import client_ip, rate_limited


class SageRockAdminSite(admin.AdminSite):
    site_header = "SageRock staff"
    site_title = "SageRock staff"
    index_title = "Administration"

    def has_permission(self, request):
        user = request.user
        return user.is_active and user.is_staff

    @method_decorator(rate_limited("auth", methods=("POST",)))
    def login(self, request, extra_context=None):
        return super().login(request, extra_context)


class SageRockAdminConfig(AdminConfig):
    default_site = "sagerock.admin_site.SageRockAdminSite"


class AuditedModelAdmin(admin.ModelAdmin):
    """Write admin changes to the tenant-scoped audit log."""

    def audit_client_id(self, obj):
        return getattr(obj, "client_id", None)

    def _audit(self, request, obj, verb: str, metadata: dict | None = None) -> None:
        from tenants.services import audit_record

        audit_record(
            client_id=self.audit_client_id(obj),
            actor=request.user,
            action=f"{obj._meta.model_name}.{verb}",
            target=f"{obj._meta.model_name}:{obj}",
            metadata=metadata or {},
            ip=client_ip(request),
        )

    def log_addition(self, request, obj, message):
        self._audit(request, obj, "created")

    def log_change(self, request, obj, message):
        changed = sorted({field for entry in message or [] for field in entry.get("changed", {}).get("fields", [])})
        self._audit(request, obj, "changed", {"fields": changed})

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._audit(request, obj, "deleted")
