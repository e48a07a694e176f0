from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm
from django.contrib.auth.forms import UserChangeForm as DjangoUserChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError

from sagerock.admin_site import AuditedModelAdmin
from sagerock.ratelimits import client_ip
from tenants.models import (
    STAFF_ROLES,
    AuditEvent,
    Client,
    OAuthAccessToken,
    OAuthApplication,
    OAuthGrant,
    OAuthIDToken,
    OAuthRefreshToken,
    Role,
    User,
)
from tenants.services import audit_record, ensure_a_super_admin_remains, user_set_active, user_set_role

# Changed only through the services, which keep a super_admin, revoke OAuth
# tokens when the client changes, and audit the change.
ACCESS_FIELDS = ("role", "client", "is_active")


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Staff may look, never add, change or delete."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ClientForm(forms.ModelForm):
    class Meta:
        model = Client
        fields = ["name", "slug", "status", "products"]

    def clean_slug(self):
        # Unique whatever the case (app.global_key compares lower-cased).
        slug = self.cleaned_data["slug"].lower()
        if Client.objects.filter(slug__iexact=slug).exclude(pk=self.instance.pk).exists():
            raise ValidationError("A client with this slug already exists.")
        return slug


@admin.register(Client)
class ClientAdmin(AuditedModelAdmin):
    form = ClientForm
    list_display = ["name", "slug", "status", "products", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "slug"]
    readonly_fields = ["public_id", "created_at"]
    actions = ["suspend", "reactivate"]

    def audit_client_id(self, obj):
        return obj.pk

    def has_delete_permission(self, request, obj=None):
        # A client's data goes with it; suspend instead, and delete through an
        # operator procedure.
        return False

    @admin.action(description="Suspend selected clients (their users can no longer log in)")
    def suspend(self, request, queryset):
        self._set_status(request, queryset, Client.Status.SUSPENDED)

    @admin.action(description="Reactivate selected clients")
    def reactivate(self, request, queryset):
        self._set_status(request, queryset, Client.Status.ACTIVE)

    def _set_status(self, request, queryset, status):
        for client in queryset.exclude(status=status):
            client.status = status
            client.save(update_fields=["status"])
            audit_record(
                client_id=client.pk, actor=request.user, action=f"client.{status}", target=f"client:{client.slug}",
                ip=client_ip(request),
            )
        self.message_user(request, f"Clients are now {status}.", messages.SUCCESS)


class _RoleRules:
    """Only a super_admin creates or changes staff accounts and roles; an
    admin manages client_admin accounts only. Enforced on the server, whatever
    the browser posts."""

    request = None

    def _restrict_roles(self):
        if self.request is not None and not self.request.user.is_super_admin and "role" in self.fields:
            self.fields["role"].choices = [(Role.CLIENT_ADMIN.value, Role.CLIENT_ADMIN.label)]

    def clean(self):
        cleaned = super().clean()
        role = cleaned.get("role")
        if role and self.request is not None and not self.request.user.is_super_admin and role in STAFF_ROLES:
            raise ValidationError({"role": "Only a super_admin can grant a staff role."})
        if role == Role.CLIENT_ADMIN and not cleaned.get("client"):
            self.add_error("client", "A client_admin belongs to a client.")
        if role in STAFF_ROLES and cleaned.get("client"):
            self.add_error("client", "Staff accounts belong to no client.")
        return cleaned


class UserCreationForm(_RoleRules, BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name", "role", "client")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._restrict_roles()

    def clean_email(self):
        email = User.objects.normalize_email(self.cleaned_data["email"]).lower()
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError("An account with this email already exists.")
        return email


class UserChangeForm(_RoleRules, DjangoUserChangeForm):
    class Meta:
        model = User
        fields = ("email", "full_name", "role", "client", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._restrict_roles()

    def clean_email(self):
        email = User.objects.normalize_email(self.cleaned_data["email"]).lower()
        if User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk).exists():
            raise ValidationError("An account with this email already exists.")
        return email

    def clean(self):
        cleaned = super().clean()
        # Checked here to show it on the form; the lock it takes lasts for the
        # request's transaction, through the service that makes the change.
        # The instance still holds the stored values.
        if cleaned.get("role") != Role.SUPER_ADMIN or not cleaned.get("is_active"):
            ensure_a_super_admin_remains(self.instance)
        return cleaned


@admin.register(User)
class UserAdmin(DjangoUserAdmin, AuditedModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    list_display = ["email", "role", "client", "is_active", "last_login"]
    list_filter = ["role", "is_active", "client"]
    search_fields = ["email", "full_name"]
    ordering = ["email"]
    readonly_fields = ["public_id", "last_login", "date_joined"]
    filter_horizontal = []
    fieldsets = [
        (None, {"fields": ["email", "password", "full_name"]}),
        ("Access", {"fields": ["role", "client", "is_active"]}),
        ("History", {"fields": ["public_id", "last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "full_name", "role", "client", "password1", "password2"]}),
    ]

    def get_form(self, request, obj=None, **kwargs):
        form_class = super().get_form(request, obj, **kwargs)
        return type(form_class.__name__, (form_class,), {"request": request})

    def _may_manage(self, request, obj) -> bool:
        return obj is None or request.user.is_super_admin or not obj.is_staff

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._may_manage(request, obj)

    def has_delete_permission(self, request, obj=None):
        # Accounts are deactivated, never deleted: the audit log refers to them.
        return False

    def save_model(self, request, obj, form, change):
        if not self._may_manage(request, obj) or (
            change and not request.user.is_super_admin and "role" in form.changed_data and obj.role in STAFF_ROLES
        ):
            raise PermissionDenied
        if not change:
            super().save_model(request, obj, form, change)
            return
        obj.save(update_fields=[name for name in form.changed_data if name not in ACCESS_FIELDS])
        ip = client_ip(request)
        if {"role", "client"} & set(form.changed_data):
            user_set_role(user=obj, role=obj.role, client=obj.client, actor=request.user, ip=ip)
        if "is_active" in form.changed_data:
            user_set_active(user=obj, is_active=obj.is_active, actor=request.user, ip=ip)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyModelAdmin):
    list_display = ["created_at", "client", "actor_label", "action", "target", "ip"]
    list_filter = ["action", "client"]
    search_fields = ["action", "target", "actor_label"]
    date_hierarchy = "created_at"
    list_select_related = ["client"]


# django-oauth-toolkit registers editable admin pages for applications, tokens
# and grants. Editing them by hand could point a token at another account or
# a first-party application at another redirect URI, so staff get a read-only
# list of applications instead; applications are made with
# `create_oauth_app` (first-party) and the API (a client's servers), tokens
# are revoked through the API.
# Django's groups are not used (roles are the permission model).
for _model in (OAuthAccessToken, OAuthRefreshToken, OAuthGrant, OAuthIDToken, OAuthApplication, Group):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(OAuthApplication)
class OAuthApplicationAdmin(ReadOnlyModelAdmin):
    list_display = ["name", "tenant", "client_type", "authorization_grant_type", "created"]
    list_filter = ["client_type", "authorization_grant_type"]
    search_fields = ["name"]
    fields = ["name", "tenant", "client_type", "authorization_grant_type", "redirect_uris", "allowed_origins", "created"]
