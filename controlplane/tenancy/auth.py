"""DRF authentication with tenant API keys: indexed prefix lookup + constant-time digest check."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication

from controlplane.core.errors import TollgateError
from controlplane.tenancy import keys
from controlplane.tenancy.errors import TenancyErrorCode
from controlplane.tenancy.models import ApiKey, Membership, Project, Tenant
from controlplane.tenancy.services import api_key_touch

# The request gates authenticate before the view; DRF then reuses that result (one key read
# per request, whoever asks first).
AUTH_CACHE_ATTR = "_tollgate_api_key_auth"

_REMEDIATION = (
    "Send `Authorization: Bearer tg_<prefix>_<secret>` with an active key of your tenant."
)


@dataclass(frozen=True)
class ApiKeyPrincipal:
    """``request.user`` for keys not bound to a person."""

    api_key_id: str
    tenant_id: str
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_staff: bool = False
    is_superuser: bool = False
    pk: None = None

    def __str__(self) -> str:
        return f"api-key:{self.api_key_id}"


def _invalid(code: str = TenancyErrorCode.API_KEY_INVALID, message: str = "Invalid API key."):
    return TollgateError(
        code,
        message,
        remediation=_REMEDIATION,
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="tollgate"'},
    )


def _columns(model, alias: str) -> str:
    return ", ".join(f'{alias}."{f.column}"' for f in model._meta.concrete_fields)


_KEY_SQL = None


def _key_sql() -> str:
    """One indexed read of the key with its tenant and bound project, written out once: every
    authenticated request runs it, and building it through the ORM each time costs more than
    the query."""
    global _KEY_SQL
    if _KEY_SQL is None:
        # Identifiers come from model metadata; the prefix is a bound parameter.
        columns = f"{_columns(ApiKey, 'k')}, {_columns(Tenant, 't')}, {_columns(Project, 'p')}"
        _KEY_SQL = (
            f"SELECT {columns} "  # noqa: S608
            f'FROM "{ApiKey._meta.db_table}" k '
            f'JOIN "{Tenant._meta.db_table}" t ON t."id" = k."tenant_id" '
            f'LEFT JOIN "{Project._meta.db_table}" p ON p."id" = k."project_id" '
            'WHERE k."prefix" = %s'
        )
    return _KEY_SQL


_PERSON_SQL = None


def _person_sql() -> str:
    """The person a key acts as, and whether they are still a member of the key's tenant."""
    global _PERSON_SQL
    if _PERSON_SQL is None:
        user_model = get_user_model()
        _PERSON_SQL = (
            f"SELECT {_columns(user_model, 'u')}, EXISTS (SELECT 1 "  # noqa: S608
            f'FROM "{Membership._meta.db_table}" m '
            'WHERE m."user_id" = u."id" AND m."tenant_id" = %s) '
            f'FROM "{user_model._meta.db_table}" u WHERE u."id" = %s'
        )
    return _PERSON_SQL


def _load_key(prefix: str) -> ApiKey | None:
    with connection.cursor() as cursor:
        cursor.execute(_key_sql(), [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    a = len(ApiKey._meta.concrete_fields)
    b = a + len(Tenant._meta.concrete_fields)
    api_key = _instance(ApiKey, row[:a])
    api_key.tenant = _instance(Tenant, row[a:b])
    if api_key.project_id is not None:
        api_key.project = _instance(Project, row[b:])
    return api_key


def _person_is_member(api_key: ApiKey) -> bool:
    """For a key that acts as a person: load the person (``request.user`` needs them anyway)
    and say whether they are active and still a member of the key's tenant.

    A second read only for such keys: service keys (the gate's callers) keep one read, and
    joining the person into the key's read costs every request ~0.1-0.2 ms more to plan.
    """
    with connection.cursor() as cursor:
        cursor.execute(_person_sql(), [api_key.tenant_id, api_key.user_id])
        row = cursor.fetchone()
    if row is None:
        return False
    api_key.user = _instance(get_user_model(), row[:-1])
    return api_key.user.is_active and bool(row[-1])


def _instance(model, values):
    """A model instance from raw column values, converted exactly as the ORM would (the
    backend's converters and the fields' ``from_db_value``: JSON text and datetimes on SQLite)."""
    converted = []
    for field, value in zip(model._meta.concrete_fields, values, strict=True):
        col = field.get_col(model._meta.db_table)
        for converter in connection.ops.get_db_converters(col) + col.get_db_converters(connection):
            value = converter(value, col, connection)
        converted.append(value)
    names = [f.attname for f in model._meta.concrete_fields]
    return model.from_db(connection.alias, names, converted)


def authenticate_api_key(raw: str) -> ApiKey:
    """Resolve a presented key to an active ApiKey, or raise 401/403 TollgateError."""
    material = keys.parse(raw)
    if material is None:
        keys.digests_match(keys.DUMMY_DIGEST, keys.digest(raw))
        raise _invalid(message="Malformed API key: expected tg_<prefix>_<secret>.")
    candidate = keys.digest(material.secret)
    api_key = _load_key(material.prefix)
    if api_key is None:
        keys.digests_match(keys.DUMMY_DIGEST, candidate)
        raise _invalid()
    if not keys.digests_match(api_key.digest, candidate):
        raise _invalid()
    # Only a holder of the real secret learns why a key stopped working.
    now = timezone.now()  # process clock: a read-only check, not a write of money or time
    if api_key.revoked_at is not None:
        raise _invalid(TenancyErrorCode.API_KEY_REVOKED, "This API key has been revoked.")
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise _invalid(TenancyErrorCode.API_KEY_EXPIRED, "This API key has expired.")
    if api_key.user_id is not None and not _person_is_member(api_key):
        # A person's key (and every key it issued) works only while the person is active and
        # a member of the tenant: deactivating or removing them ends it, no revocation needed.
        raise _invalid(
            TenancyErrorCode.API_KEY_USER_INACTIVE,
            "The person this API key acts as is deactivated or no longer a member of the tenant.",
        )
    tenant = api_key.tenant
    if tenant.lifecycle == Tenant.Lifecycle.SUSPENDED:
        raise TollgateError(
            TenancyErrorCode.TENANT_SUSPENDED,
            "This tenant is suspended.",
            remediation="Contact your Tollgate operator to reactivate the tenant.",
            status=403,
        )
    if tenant.lifecycle == Tenant.Lifecycle.TERMINATED:
        raise TollgateError(
            TenancyErrorCode.TENANT_TERMINATED,
            "This tenant has been terminated.",
            remediation="Its keys no longer work; contact your Tollgate operator.",
            status=403,
        )
    api_key_touch(
        api_key=api_key, now=now, resolution_seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS
    )
    return api_key


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer tg_...``; ``request.auth`` is the ApiKey, ``request.user`` its user."""

    keyword = "bearer"

    def authenticate(self, request):
        django_request = getattr(request, "_request", request)
        cached = getattr(django_request, AUTH_CACHE_ATTR, None)
        if cached is not None:
            return cached
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != self.keyword or not value.strip():
            raise _invalid(message="Use the Bearer scheme: `Authorization: Bearer tg_...`.")
        api_key = authenticate_api_key(value.strip())
        user = api_key.user or ApiKeyPrincipal(api_key_id=api_key.id, tenant_id=api_key.tenant_id)
        return user, api_key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="tollgate"'
