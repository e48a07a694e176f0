"""Base classes every API view over tenant rows inherits.

Row Level Security already limits what the database returns; these bases add
the same scoping in the query (so the planner uses client indexes and a
mistake is caught twice), address objects by their non-sequential public id,
and make the safe path the only easy one: a subclass that overrides
`get_queryset` (itself or through a mixin) is refused when the class is created.
"""

from rest_framework import viewsets

from sagerock.api.permissions import is_staff_principal


class TenantScopedMixin:
    lookup_field = "public_id"
    # Path from the model to its client id column.
    tenant_field = "client_id"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # The resolved method, not the class's own dict: a mixin listed
        # before the base would otherwise slip its get_queryset past.
        if cls.get_queryset is not TenantScopedMixin.get_queryset:
            raise TypeError(
                f"{cls.__name__} overrides get_queryset(); define base_queryset() instead, "
                "so the tenant scoping cannot be bypassed by accident."
            )

    def base_queryset(self):
        return self.queryset.all()

    def get_queryset(self):
        queryset = self.base_queryset()
        user = self.request.user
        if is_staff_principal(user):
            return queryset
        client_id = getattr(user, "client_id", None)
        if client_id is None:
            return queryset.none()
        return queryset.filter(**{self.tenant_field: client_id})


class TenantScopedViewSet(TenantScopedMixin, viewsets.GenericViewSet):
    pass
