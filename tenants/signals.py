"""Install the configured tenant-context key after every `migrate`, so a new
database (the test database included) accepts the application's proofs and a
deploy with a new key installs it. Rotation (retiring the old key after an
overlap) is `manage.py rotate_tenant_context_secret`."""

import logging

from django.db import connections

from tenants import context_proof

logger = logging.getLogger(__name__)


def install_tenant_context_key(sender, using="default", plan=None, **kwargs):
    if sender.name != "tenants":
        return
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('app.tenant_context_key') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return
    result = context_proof.install_key(connection, key=context_proof.secret())
    if result["installed"]:
        logger.info("tenant context key %s installed", result["fingerprint"])
