"""Issue an API key from the shell (operators): optionally bound to a user, printed once.

The key is printed alone on the last line, so scripts can take it with ``tail -n 1``.
People can create their own keys in the dashboard (My API keys); this command is for operators
who provision keys for someone, e.g. an approver's key:

    manage.py create_api_key demo --user admin --name "approvals" \\
        --scopes approvals:read approvals:write

The key records who is accountable for it, as the key hierarchy does for keys issued through
the API or the dashboard: a key acting as ``--user`` is that person's (they cannot approve what
it, or any key it issues, requests); a service key may name the member accountable for it with
``--created-by``; without either it is the operator's own, accountable to no tenant member.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from controlplane.core.errors import TollgateError
from controlplane.tenancy.models import Membership, Project, Tenant
from controlplane.tenancy.services import api_key_issue


class Command(BaseCommand):
    help = "Issue an API key for a tenant (optionally bound to a member); prints it once."

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="Tenant slug.")
        parser.add_argument("--name", required=True)
        parser.add_argument("--scopes", nargs="+", required=True, metavar="SCOPE")
        parser.add_argument("--user", help="Username the key acts as (must be a member).")
        parser.add_argument(
            "--created-by",
            help="Username of the member accountable for a service key (default: --user).",
        )
        parser.add_argument("--project", help="Bind the key to this project slug.")
        parser.add_argument("--environment", default="")
        parser.add_argument("--expires-in-days", type=int)

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        user = _member(tenant, options["user"])
        created_by = _member(tenant, options["created_by"]) or user
        if user is not None and created_by != user:
            raise CommandError("A key that acts as a person is that person's: drop --created-by.")
        project = None
        if options["project"]:
            project = Project.objects.for_tenant(tenant).filter(slug=options["project"]).first()
            if project is None:
                raise CommandError(f"No project {options['project']!r} in {tenant.slug}.")
        days = options["expires_in_days"]
        try:
            api_key, plaintext = api_key_issue(
                tenant=tenant,
                name=options["name"],
                scopes=options["scopes"],
                project=project,
                environment=options["environment"],
                expires_at=timezone.now() + timedelta(days=days) if days else None,
                user=user,
                created_by=created_by,
            )
        except TollgateError as exc:
            raise CommandError(f"{exc.message} {exc.remediation or ''}".strip()) from exc
        bound = f" bound to {user.get_username()}" if user else ""
        if created_by is not None and user is None:
            bound += f" (accountable: {created_by.get_username()})"
        self.stdout.write(f"Issued {api_key.masked} ({', '.join(api_key.scopes)}){bound}:")
        self.stdout.write(plaintext)


def _member(tenant: Tenant, username: str | None):
    """The member of ``tenant`` with this username (None when no name is given)."""
    if not username:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None or not Membership.objects.filter(tenant=tenant, user=user).exists():
        raise CommandError(f"{username!r} is not a member of {tenant.slug}; add them first.")
    return user
