from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from oauth2_provider import views as oauth_views

from sagerock.api.schema import DocsView, SchemaView
from sagerock.health import healthz
from tenants import oauth

oauth_patterns = [
    path("authorize/", oauth_views.AuthorizationView.as_view(), name="authorize"),
    path("token/", oauth.TokenView.as_view(), name="token"),
    path("revoke_token/", oauth.RevokeTokenView.as_view(), name="revoke-token"),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", oauth.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("oauth/", include((oauth_patterns, "oauth2_provider"), namespace="oauth2_provider")),
    path("api/v1/", include("tenants.api.urls")),
    path("api/v1/", include("vault.api.urls")),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", DocsView.as_view(url_name="schema"), name="api-docs"),
]

if settings.TESTING:
    urlpatterns += [
        path("test-only/", include("tests.probe_urls")),
        path("api/test-only/", include("tests.probe_api_urls")),
    ]

handler400 = "sagerock.api.exceptions.api_aware_400"
handler403 = "sagerock.api.exceptions.api_aware_403"
handler404 = "sagerock.api.exceptions.api_aware_404"
handler500 = "sagerock.api.exceptions.api_aware_500"
