"""Plan limits seen from below: tenancy (and identity) count, billing decides.

Billing sits above tenancy, so it registers its checker here at start-up; services of any layer
call ``enforce`` with a counting function. The tenant row is locked first, so concurrent
creates in one tenant are serialised and the last slot is taken once.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

_checker: Callable[..., None] | None = None


def register_limit_checker(checker: Callable[..., None]) -> None:
    """``checker(tenant=..., limit=..., count=...)`` raises when ``count`` is over the limit."""
    global _checker
    _checker = checker


def enforce(*, tenant, limit: str, count: Callable[[], int], adding: int = 1) -> None:
    """Lock the tenant, count what exists, and refuse when ``count() + adding`` is over."""
    if _checker is None:
        raise ImproperlyConfigured("no plan limit checker registered (is `billing` installed?)")
    from controlplane.tenancy.models import Tenant

    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("plan_limits.enforce must run inside the creating transaction")
    # NO KEY UPDATE: concurrent inserts referencing the tenant (decisions) are not blocked.
    Tenant.objects.select_for_update(no_key=True).filter(pk=getattr(tenant, "pk", tenant)).exists()
    _checker(tenant=tenant, limit=limit, count=count() + adding)


def check(*, tenant, limit: str, count: int) -> None:
    """Refuse ``count`` if over the plan's ``limit``, without a lock (form validation: the
    writer cannot lock the tenant before the form is shown; a concurrent edit may pass)."""
    if _checker is None:
        raise ImproperlyConfigured("no plan limit checker registered (is `billing` installed?)")
    _checker(tenant=tenant, limit=limit, count=count)
