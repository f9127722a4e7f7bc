"""Defaults referenced by migration 0001 (TenantGateSettings, since replaced by policies).

Kept only so historical migrations import; nothing else uses them.
"""


def default_modes() -> dict:
    return {"*": {"prod": "hard", "nonprod": "hard"}}


def default_fail_modes() -> dict:
    return {"prod": "closed", "nonprod": "open"}


def default_prod_environments() -> list:
    return ["prod", "production"]
