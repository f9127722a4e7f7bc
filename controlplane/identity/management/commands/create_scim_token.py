"""Create (or rotate) a tenant's SCIM token; the token is printed alone on the last line, once."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from controlplane.core.errors import TollgateError
from controlplane.identity.models import ScimToken
from controlplane.identity.services.tokens import scim_token_issue, scim_token_rotate
from controlplane.tenancy.models import Tenant


class Command(BaseCommand):
    help = (
        "Create a SCIM bearer token for TENANT_SLUG (or rotate one with --rotate). "
        "The token is shown once, on the last line; Tollgate keeps only a digest."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant_slug")
        parser.add_argument("--name", default="identity provider", help="Which IdP uses it.")
        parser.add_argument(
            "--rotate",
            metavar="TOKEN_ID",
            help="Replace this token (sct_... or its prefix) by a new one with the same name.",
        )
        parser.add_argument(
            "--grace-seconds",
            type=int,
            default=0,
            help="With --rotate: how long the old token keeps working (default: stops now).",
        )

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant_slug"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {options['tenant_slug']!r}.")
        try:
            if options["rotate"]:
                ident = options["rotate"]
                old = (
                    ScimToken.objects.for_tenant(tenant)
                    .filter(Q(pk=ident) | Q(prefix=ident))
                    .first()
                )
                if old is None:
                    raise CommandError(f"No SCIM token {ident!r} in tenant {tenant.slug}.")
                token, plaintext = scim_token_rotate(
                    token=old, grace_seconds=options["grace_seconds"]
                )
                ends = "now" if options["grace_seconds"] <= 0 else f"in {options['grace_seconds']}s"
                self.stdout.write(f"Rotated {old.id}; it stops working {ends}.")
            else:
                token, plaintext = scim_token_issue(tenant=tenant, name=options["name"])
        except TollgateError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"SCIM token {token.id} for tenant {tenant.slug} (base URL: <your Tollgate URL>/scim/v2)."
        )
        self.stdout.write("Copy it now; it is not shown again:")
        self.stdout.write(plaintext)
