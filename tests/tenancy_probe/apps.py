from django.apps import AppConfig


class TenancyProbeConfig(AppConfig):
    name = "tests.tenancy_probe"
    label = "tenancy_probe"
