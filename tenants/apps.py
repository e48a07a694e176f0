from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Clients and users"

    def ready(self) -> None:
        from django.contrib.auth import signals
        from django.contrib.auth.models import update_last_login

        from tenants import checks  # noqa: F401  (registers the system checks)
        from tenants.auth import end_every_session, record_sign_in

        # Django's receiver saves through whatever alias is current; ours
        # writes inside the user's own context.
        signals.user_logged_in.disconnect(update_last_login, dispatch_uid="update_last_login")
        signals.user_logged_in.connect(record_sign_in, dispatch_uid="sagerock_record_sign_in")
        signals.user_logged_out.connect(end_every_session, dispatch_uid="sagerock_end_every_session")

        from corsheaders.signals import check_request_enabled

        from tenants.oauth import first_party_origin_allowed

        check_request_enabled.connect(first_party_origin_allowed, dispatch_uid="sagerock_first_party_origins")

        from django.core.signals import request_finished
        from django.db.backends.signals import connection_created
        from django_tasks.signals import task_finished, task_started

        from tenants.context import reset_runtime_connections, watch_runtime_connection
        from tenants.tasks import refuse_plain_tasks_that_name_a_client

        connection_created.connect(watch_runtime_connection, dispatch_uid="sagerock_watch_runtime_connection")

        request_finished.connect(reset_runtime_connections, dispatch_uid="sagerock_reset_runtime_connections")
        task_finished.connect(reset_runtime_connections, dispatch_uid="sagerock_reset_runtime_connections")
        task_started.connect(refuse_plain_tasks_that_name_a_client, dispatch_uid="sagerock_refuse_plain_tasks")

        from django.db.models.signals import post_migrate

        from tenants.signals import install_tenant_context_key

        post_migrate.connect(install_tenant_context_key, sender=self, dispatch_uid="sagerock_tenant_context_key")
