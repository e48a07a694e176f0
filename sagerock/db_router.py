"""Route every query to the alias of the current tenant context.

Migrations run only on `default` (the owner role). An instance loaded through
one alias is saved through the same alias, so a staff user read as
`sagerock_staff` is not written back as `sagerock_app`.
"""

from tenants.context import APP_ALIAS, SERVICE_ALIAS, current_alias, current_client_id

QUEUE_MODEL = "django_tasks_database.dbtaskresult"


class TenantContextRouter:
    def _alias(self, model, hints: dict) -> str:
        instance = hints.get("instance")
        if instance is not None and instance._state.db:
            return instance._state.db
        alias = current_alias()
        if alias == APP_ALIAS and current_client_id() is None and model._meta.label_lower == QUEUE_MODEL:
            # The task queue is a tenant table (tenants migration 0008): with
            # no client the app role sees none of it. The worker, and code
            # that queues work outside any context, use the service role.
            return SERVICE_ALIAS
        return alias

    def db_for_read(self, model, **hints):
        return self._alias(model, hints)

    def db_for_write(self, model, **hints):
        return self._alias(model, hints)

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"
