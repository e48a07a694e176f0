import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sagerock.settings")

application = get_wsgi_application()

# A deployment whose Row Level Security is broken must not serve requests.
from tenants.rls import refuse_to_start_without_rls  # noqa: E402

refuse_to_start_without_rls()
