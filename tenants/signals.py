"""Install the configured tenant-context key after `migrate` into a database
that has none yet, so a new database (the test database included) accepts the
application's proofs.

Nothing else: `migrate` never installs a second key, never makes a retired
key valid again, and never expires one. Run with an old or leaked secret (a
rollback deploy), it stops with an error instead of reviving that key.
Installing, rotating to and reinstating keys is
`manage.py rotate_tenant_context_secret`."""

import logging

from django.core.management.base import CommandError
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
    key = context_proof.secret()
    try:
        installed = context_proof.install_initial_key(connection, key=key)
    except context_proof.TenantContextKeyError as error:
        # A CommandError: `migrate` prints the message alone and exits 1.
        raise CommandError(str(error)) from None
    if installed:
        logger.info("tenant context key %s installed", context_proof.fingerprint(key))
