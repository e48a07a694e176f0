"""Run a session-authenticated request in its user's context.

Staff sessions (Django admin) run as `sagerock_staff`; a client_admin's
session (the OAuth login and consent pages) runs as `sagerock_app` for their
client. Each request is one transaction, so a failed write leaves nothing
behind. Anonymous requests keep the empty default context.

Bearer-token API requests carry no session; the API authentication class sets
their context instead.
"""

from tenants.auth import context_for_user


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
            return self.get_response(request)
