"""API key scopes. Higher layers register their scopes here (lower layers never import them)."""

from __future__ import annotations

_SCOPES: dict[str, str] = {}


def register_scope(name: str, description: str) -> str:
    """Declare a scope; returns the name so modules can keep it as a constant."""
    _SCOPES[name] = description
    return name


def all_scopes() -> dict[str, str]:
    """Every registered scope with its description, sorted by name."""
    return dict(sorted(_SCOPES.items()))


def is_known_scope(name: str) -> bool:
    return name in _SCOPES


TENANT_READ = register_scope("tenant:read", "Read the caller's tenant.")
PROJECTS_READ = register_scope("projects:read", "List and read projects.")
PROJECTS_WRITE = register_scope("projects:write", "Create projects.")
API_KEYS_READ = register_scope("api_keys:read", "List API keys (never their secrets).")
API_KEYS_WRITE = register_scope("api_keys:write", "Issue and revoke API keys.")
LEDGER_READ = register_scope("ledger:read", "Read, verify and export the ledger.")
