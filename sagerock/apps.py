from django.apps import AppConfig


class SageRockConfig(AppConfig):
    name = "sagerock"
    verbose_name = "SageRock"

    def ready(self):
        from sagerock import checks  # noqa: F401 - registers the system checks
        from sagerock.api import schema  # noqa: F401 - registers the OpenAPI security scheme
