"""Issue an API key from the shell (operators): optionally bound to a user, printed once.

The key is printed alone on the last line, so scripts can take it with ``tail -n 1``.
People can create their own keys in the dashboard (My API keys); this command is for operators
who provision keys for someone, e.g. an approver's key:

    manage.py create_api_key demo --user admin --name "approvals" \\
        --scopes approvals:read approvals:write
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
        parser.add_argument("--project", help="Bind the key to this project slug.")
        parser.add_argument("--environment", default="")
        parser.add_argument("--expires-in-days", type=int)

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None or not Membership.objects.filter(tenant=tenant, user=user).exists():
                raise CommandError(
                    f"{options['user']!r} is not a member of {tenant.slug}; add them first."
                )
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
            )
        except TollgateError as exc:
            raise CommandError(f"{exc.message} {exc.remediation or ''}".strip()) from exc
        bound = f" bound to {user.get_username()}" if user else ""
        self.stdout.write(f"Issued {api_key.masked} ({', '.join(api_key.scopes)}){bound}:")
        self.stdout.write(plaintext)
