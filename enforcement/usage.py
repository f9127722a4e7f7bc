"""Usage the billing gate counts against plan limits (registered with billing at start-up)."""

from __future__ import annotations

from datetime import UTC, datetime

from controlplane.core.ids import id_lower_bound
from enforcement.models import Decision


def decisions_this_month(tenant_id: str) -> int:
    """Gate decisions of the tenant since the start of the calendar month (UTC).

    Decision ids sort by creation time, so this is a range count on the (tenant, id) index; the
    billing gate caches it (``BILLING_USAGE_CACHE_SECONDS``), it is not on every request.
    """
    start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return Decision.objects.filter(
        tenant_id=tenant_id, id__gte=id_lower_bound("dec", start)
    ).count()
