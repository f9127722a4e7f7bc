"""SCIM Users: create, replace (PUT), patch, delete. Each call is one transaction.

A SCIM user is a person in one tenant. Its Tollgate account is found or made at creation:
- an account SCIM made for this tenant earlier (``<tenant-slug>/<userName>``) is taken back;
- else an existing non-staff member of the tenant whose username or email is the userName is
  linked (SCIM then never edits that account's profile, which other tenants may share);
- else a new account ``<tenant-slug>/<userName>`` without a password is created.
"""

from __future__ import annotations

from typing import Any

import structlog
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q

from controlplane.audit.services import ledger_append_control
from controlplane.core.canonical import sha256_hex
from controlplane.identity.models import ScimUser, ScimUserEmail
from controlplane.identity.representations import user_body, version
from controlplane.identity.scim import errors
from controlplane.identity.scim.documents import precondition, validate
from controlplane.identity.scim.patch import apply_patch
from controlplane.identity.scim.schema import USER
from controlplane.identity.selectors import GroupMembership, groups_of_users, scim_users
from controlplane.identity.services.people import person_deprovision, person_reactivate
from controlplane.tenancy.models import Membership, Tenant
from controlplane.tenancy.services import membership_set

log = structlog.get_logger(__name__)
MAX_COLUMN = 255


def _column(doc: dict, name: str) -> str:
    value = doc.get(name) or ""
    if len(value) > MAX_COLUMN:
        raise errors.invalid_value(f"{name} is longer than {MAX_COLUMN} characters.")
    return value


def _check_unique(tenant: Tenant, doc: dict, *, exclude: str | None = None) -> None:
    others = scim_users(tenant_id=tenant.id).exclude(pk=exclude)
    if others.filter(user_name__iexact=doc["userName"]).exists():
        raise errors.uniqueness(
            f"userName {doc['userName']!r} is already used in this tenant (case-insensitively). "
            'Look it up with filter=userName eq "..." and update that user instead.'
        )
    external_id = doc.get("externalId")
    if external_id and others.filter(external_id=external_id).exists():
        raise errors.uniqueness(f"externalId {external_id!r} is already used in this tenant.")


def _handle(tenant: Tenant, user_name: str) -> str:
    """The Tollgate username of an account SCIM creates (Django caps usernames at 150)."""
    handle = f"{tenant.slug}/{user_name}"
    return handle if len(handle) <= 150 else f"{tenant.slug}/{sha256_hex(user_name.lower())[:40]}"


def _account(tenant: Tenant, doc: dict) -> tuple[Any, bool]:
    """(Tollgate user, whether SCIM owns it) for a new SCIM user (see the module docstring)."""
    users = get_user_model().objects.exclude(scim_identities__tenant=tenant)
    handle = _handle(tenant, doc["userName"])
    former = users.filter(username__iexact=handle).first()
    if former is not None:
        return former, True
    members = list(
        users.filter(memberships__tenant=tenant, is_staff=False, is_superuser=False).filter(
            Q(username__iexact=doc["userName"]) | Q(email__iexact=doc["userName"])
        )[:2]
    )
    if len(members) == 1:
        return members[0], False
    user = get_user_model()(username=handle)
    user.set_unusable_password()
    _profile(user, doc)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        raise errors.uniqueness(f"An account named {handle!r} already exists.") from exc
    return user, True


def _primary_email(doc: dict) -> str:
    emails = doc.get("emails") or []
    chosen = next((e for e in emails if e.get("primary") is True), emails[0] if emails else {})
    value = chosen.get("value") or ""
    return value if len(value) <= 254 else ""


def _profile(user, doc: dict) -> None:
    name = doc.get("name") or {}
    user.first_name = (name.get("givenName") or "")[:150]
    user.last_name = (name.get("familyName") or "")[:150]
    user.email = _primary_email(doc)


def _sync_account(scim_user: ScimUser, doc: dict) -> None:
    """Keep an account SCIM owns in step with the document (linked accounts are left alone)."""
    if not scim_user.owns_user:
        return
    user = scim_user.user
    before = (user.username, user.first_name, user.last_name, user.email)
    _profile(user, doc)
    user.username = _handle(scim_user.tenant, doc["userName"])
    if (user.username, user.first_name, user.last_name, user.email) == before:
        return
    clash = get_user_model().objects.filter(username__iexact=user.username).exclude(pk=user.pk)
    if clash.exists():
        raise errors.uniqueness(f"An account named {user.username!r} already exists.")
    user.save(update_fields=["username", "first_name", "last_name", "email"])


def _index_emails(scim_user: ScimUser, doc: dict) -> None:
    ScimUserEmail.objects.filter(scim_user=scim_user).delete()
    ScimUserEmail.objects.bulk_create(
        ScimUserEmail(
            scim_user=scim_user,
            position=position,
            value=email.get("value"),
            type=email.get("type"),
            display=email.get("display"),
            primary=email.get("primary"),
        )
        for position, email in enumerate(doc.get("emails") or [])
    )


def _fill(scim_user: ScimUser, doc: dict) -> None:
    scim_user.attributes = doc
    scim_user.user_name = _column(doc, "userName")
    scim_user.external_id = _column(doc, "externalId")
    scim_user.display_name = _column(doc, "displayName")


def _save(scim_user: ScimUser) -> None:
    try:
        with transaction.atomic():
            scim_user.save()
    except IntegrityError as exc:  # a concurrent request took the userName or externalId
        raise errors.uniqueness("userName or externalId is already used in this tenant.") from exc


@transaction.atomic
def scim_user_create(*, tenant: Tenant, doc: dict) -> ScimUser:
    """Provision a person: account found or made, membership (role member) unless inactive."""
    validate(USER, doc)
    _check_unique(tenant, doc)
    user, owned = _account(tenant, doc)
    membership = Membership.objects.filter(tenant=tenant, user=user).first()
    scim_user = ScimUser(
        tenant=tenant,
        user=user,
        owns_user=owned,
        restore_role=membership.role if membership else Membership.Role.MEMBER,
    )
    _fill(scim_user, doc)
    scim_user.active = None if doc.get("active") is False else doc.get("active")
    _save(scim_user)
    _sync_account(scim_user, doc)
    _index_emails(scim_user, doc)
    ledger_append_control(
        tenant_id=tenant.id,
        kind="scim.user.created",
        payload={"scim_user": scim_user.id, "user": user.pk, "linked": not owned},
    )
    if doc.get("active") is False:
        person_deprovision(scim_user=scim_user, reason="created_inactive")
        _save(scim_user)
    elif membership is None:
        membership_set(tenant=tenant, user=user, role=scim_user.restore_role)
    log.info("scim_user_created", tenant=tenant.id, scim_user=scim_user.id, linked=not owned)
    return scim_user


def _locked(tenant: Tenant, scim_id: str, if_match: str | None) -> ScimUser:
    scim_user = (
        scim_users(tenant_id=tenant.id)
        .select_for_update(of=("self",))
        .select_related("tenant", "user")
        .filter(pk=scim_id)
        .first()
    )
    if scim_user is None:
        raise errors.not_found("User", scim_id)
    if if_match is not None:
        groups = groups_of_users(tenant_id=tenant.id, user_ids=[scim_user.user_id])
        precondition(if_match, version(user_body(scim_user, groups[scim_user.user_id], base="")))
    return scim_user


def _update(scim_user: ScimUser, doc: dict, *, via: str) -> ScimUser:
    validate(USER, doc)
    _check_unique(scim_user.tenant, doc, exclude=scim_user.pk)
    before = scim_user.attributes or {}
    was_active, active = scim_user.is_active, doc.get("active") is not False
    _fill(scim_user, doc)
    if was_active and not active:
        person_deprovision(scim_user=scim_user, reason="active_false")
    elif active and not was_active:
        person_reactivate(scim_user=scim_user)
    scim_user.active = doc.get("active")
    _save(scim_user)
    _sync_account(scim_user, doc)
    _index_emails(scim_user, doc)
    changed = sorted(k for k in set(before) | set(doc) if before.get(k) != doc.get(k))
    ledger_append_control(
        tenant_id=scim_user.tenant_id,
        kind="scim.user.updated",
        payload={
            "scim_user": scim_user.id,
            "user": scim_user.user_id,
            "via": via,
            "changed": changed,
        },
    )
    return scim_user


@transaction.atomic
def scim_user_replace(*, tenant: Tenant, scim_id: str, doc: dict, if_match: str | None) -> ScimUser:
    """PUT: the document replaces every writable attribute (those left out become unassigned)."""
    return _update(_locked(tenant, scim_id, if_match), doc, via="put")


@transaction.atomic
def scim_user_patch(*, tenant: Tenant, scim_id: str, body: Any, if_match: str | None) -> ScimUser:
    """PATCH: the operations apply to the stored document, all or nothing."""
    scim_user = _locked(tenant, scim_id, if_match)
    return _update(scim_user, apply_patch(USER, scim_user.attributes or {}, body), via="patch")


@transaction.atomic
def scim_user_delete(*, tenant: Tenant, scim_id: str, if_match: str | None) -> None:
    """DELETE: deprovision, leave every approver group of the tenant, forget the SCIM identity.

    The Tollgate account stays (votes and decisions refer to it), deactivated when SCIM made it.
    """
    scim_user = _locked(tenant, scim_id, if_match)
    if scim_user.is_active:
        person_deprovision(scim_user=scim_user, reason="deleted")
    left = GroupMembership.objects.filter(
        user_id=scim_user.user_id, approvergroup__tenant_id=tenant.id
    )
    groups = sorted(left.values_list("approvergroup_id", flat=True))
    left.delete()
    scim_user.delete()
    ledger_append_control(
        tenant_id=tenant.id,
        kind="scim.user.deleted",
        payload={"scim_user": scim_id, "user": scim_user.user_id, "groups_left": groups},
    )
    log.info("scim_user_deleted", tenant=tenant.id, scim_user=scim_id)
