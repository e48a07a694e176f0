"""Run a session-authenticated request in its user's context.

Staff sessions (Django admin) run as `sagerock_staff`; a client_admin's
session (the OAuth login and consent pages) runs as `sagerock_app` for their
client. Each request is one transaction, so a failed write leaves nothing
behind: Django turns a view's exception into a 500 response before it reaches
this middleware, so any error response (4xx or 5xx) rolls the transaction
back explicitly, as the API's middleware does. Anonymous requests keep the empty default context.

Bearer-token API requests carry no session; the API authentication class sets
their context instead.
"""

from django.db import transaction

from tenants.auth import context_for_user
from tenants.context import current_alias


class SessionTenantContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            # The API authenticates with Bearer tokens only; its middleware
            # sets the context.
            return self.get_response(request)
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        with context_for_user(user):
            response = self.get_response(request)
            if response.status_code >= 400:
                transaction.set_rollback(True, using=current_alias())
            return response
