"""Project-wide error handlers rendering problem+json (Django-level 400/403/404/500)."""

from controlplane.core.errors import CoreErrorCode
from controlplane.core.problems import problem_response


def bad_request(request, exception=None):
    return problem_response(
        request, status=400, code=CoreErrorCode.MALFORMED_REQUEST, detail="Bad request."
    )


def permission_denied(request, exception=None):
    return problem_response(
        request,
        status=403,
        code=CoreErrorCode.PERMISSION_DENIED,
        detail="You do not have permission for this action.",
    )


def not_found(request, exception=None):
    return problem_response(
        request,
        status=404,
        code=CoreErrorCode.NOT_FOUND,
        detail=f"No route or resource at {request.path}.",
        remediation="See /api/docs/ for the available endpoints.",
    )


def server_error(request):
    return problem_response(
        request,
        status=500,
        code=CoreErrorCode.INTERNAL_ERROR,
        detail="An internal error occurred; it has been logged.",
        remediation="Retry later; report the request_id if it persists.",
    )
