"""OpenAPI description of the SCIM token authentication (drf-spectacular extension)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ScimTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "controlplane.identity.auth.ScimTokenAuthentication"
    name = "ScimToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "tgscim_<prefix>_<secret>",
            "description": "A tenant's SCIM token: `Authorization: Bearer tgscim_<prefix>_<secret>`.",
        }
