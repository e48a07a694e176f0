"""Route every query to the alias of the current tenant context.

Migrations run only on `default` (the owner role). An instance loaded through
one alias is saved through the same alias, so a staff user read as
`sagerock_staff` is not written back as `sagerock_app`.
"""

from tenants.context import current_alias


class TenantContextRouter:
    def _alias(self, hints: dict) -> str:
        instance = hints.get("instance")
        if instance is not None and instance._state.db:
            return instance._state.db
        return current_alias()

    def db_for_read(self, model, **hints):
        return self._alias(hints)

    def db_for_write(self, model, **hints):
        return self._alias(hints)

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"
