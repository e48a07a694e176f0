"""OpenAPI additions: the OAuth 2.0 security scheme of our Bearer
authentication, the error shape on every operation, and the schema and docs
views, whose errors are JSON like every other API error."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.renderers import JSONRenderer

ERROR_COMPONENT = {
    "type": "object",
    "required": ["code", "detail", "fields"],
    "properties": {
        "code": {"type": "string", "description": "Stable machine-readable code, e.g. not_authenticated, invalid."},
        "detail": {"type": "string", "description": "Human-readable explanation."},
        "fields": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Per-field messages for invalid input; empty otherwise.",
        },
    },
}

ERROR_RESPONSES = {
    "400": "Invalid input",
    "401": "Missing, invalid, expired or revoked access token",
    "403": "The token's role may not do this",
    "404": "Not found (or belongs to another client)",
    "405": "Method not allowed",
    "429": "Rate limited; see Retry-After",
}


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "sagerock.api.authentication.BearerTokenAuthentication"
    name = "oauth2"

    def get_security_definition(self, auto_schema):
        return {
            "type": "oauth2",
            "description": (
                "Browser front end: authorization code with PKCE (S256). "
                "A client's own servers: client credentials. Send the access token as `Authorization: Bearer <token>`."
            ),
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": "/oauth/authorize/",
                    "tokenUrl": "/oauth/token/",
                    "refreshUrl": "/oauth/token/",
                    "scopes": {"api": "Use the SageRock API for your organization"},
                },
                "clientCredentials": {
                    "tokenUrl": "/oauth/token/",
                    "scopes": {"api": "Use the SageRock API for your organization"},
                },
            },
        }

    def get_security_requirement(self, auto_schema):
        return {self.name: ["api"]}


def add_error_responses(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_COMPONENT
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status_code, description in ERROR_RESPONSES.items():
                responses.setdefault(status_code, {"description": description, "content": reference})
    return result


class JsonErrorsMixin:
    """Render errors (405 and the like) as JSON in the one error shape, not
    with the YAML or HTML renderer the view uses for its success answer."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class SchemaView(JsonErrorsMixin, SpectacularAPIView):
    pass


class DocsView(JsonErrorsMixin, SpectacularSwaggerView):
    pass
