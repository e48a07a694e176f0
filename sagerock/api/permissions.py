"""Role permissions for the API.

`client_admin` users and client-credentials applications act for their own
client; `super_admin` and `admin` are staff and act across clients.
"""

from rest_framework.permissions import BasePermission

from tenants.models import Role


def is_staff_principal(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_staff", False))


def is_client_principal(user) -> bool:
    """A client_admin, or a client's own server (client credentials)."""
    role = getattr(user, "role", None)
    return bool(getattr(user, "is_authenticated", False) and role in (Role.CLIENT_ADMIN, "client_application"))


class IsAuthenticatedPrincipal(BasePermission):
    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated)


class IsStaff(BasePermission):
    message = "Only SageRock staff may do this."

    def has_permission(self, request, view):
        return is_staff_principal(request.user)


class IsClientPrincipal(BasePermission):
    message = "Only a client's own administrators may do this."

    def has_permission(self, request, view):
        return is_client_principal(request.user)


class IsClientAdminUser(BasePermission):
    """A person who administers a client (not an application token)."""

    message = "Only a client_admin user may do this."

    def has_permission(self, request, view):
        return bool(request.user.is_authenticated and getattr(request.user, "role", None) == Role.CLIENT_ADMIN)
