"""API key scopes owned by the BYOK app."""

from controlplane.tenancy.scopes import register_scope

BYOK_READ = register_scope("byok:read", "List and read BYOK provider credentials (never keys).")
BYOK_WRITE = register_scope(
    "byok:write", "Add, validate, rotate and revoke BYOK provider credentials."
)
