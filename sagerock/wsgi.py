import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sagerock.settings")

application = get_wsgi_application()

# A deployment whose Row Level Security is broken, or whose vault keys are
# missing or malformed, must not serve requests. The keyring error names
# VAULT_KEYS and the key's position, never its value.
from tenants.rls import refuse_to_start_without_rls  # noqa: E402
from vault.keyring import keyring  # noqa: E402

keyring()
refuse_to_start_without_rls()
