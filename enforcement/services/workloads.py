"""What a deleted Kubernetes workload gives back: the pending holds its admissions took."""

from __future__ import annotations

from controlplane.core.errors import TollgateError
from enforcement.errors import EnforcementErrorCode
from enforcement.models import Reservation
from enforcement.services.reservations import reservation_release


def workload_release(*, tenant, resource_id: str, api_key=None) -> list[str]:
    """Release every pending reservation of the ``kubernetes`` decisions on ``resource_id``
    (``Kind/namespace/name``); a key bound to a project/environment releases only its own.
    Returns the ids released; one resolved meanwhile by someone else is skipped."""
    pending = Reservation.objects.filter(
        tenant=tenant,
        state=Reservation.State.PENDING,
        decision__source="kubernetes",
        decision__request__resource__id=resource_id,
    )
    if api_key is not None and api_key.project_id:
        pending = pending.filter(decision__project_id=api_key.project_id)
    if api_key is not None and api_key.environment:
        pending = pending.filter(decision__environment=api_key.environment)
    released = []
    for reservation_id in pending.order_by("id").values_list("id", flat=True):
        try:
            reservation_release(reservation_id=reservation_id)
        except TollgateError as exc:
            if exc.code != EnforcementErrorCode.RESERVATION_RESOLVED:
                raise
            continue
        released.append(reservation_id)
    return released
