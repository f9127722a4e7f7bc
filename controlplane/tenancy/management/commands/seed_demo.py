"""Create (or refresh) the demo tenant, its projects, an admin login and a fresh API key."""

from __future__ import annotations

import json
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from controlplane.tenancy import services
from controlplane.tenancy.models import Project, Tenant
from controlplane.tenancy.scopes import all_scopes

# Higher layers append callables(tenant=..., stdout=...) to seed their own demo data.
SEED_DEMO_HOOKS: list = []
# ... and to prepare the demo tenant before anything is created in it (e.g. its plan, whose
# limits and entitlements decide what the rest may create).
SEED_DEMO_TENANT_HOOKS: list = []

DEMO_PROJECTS = [("payments", "Payments"), ("platform", "Platform"), ("ml", "Machine learning")]


class Command(BaseCommand):
    help = "Seed a demo tenant with projects, an admin login and an API key (printed once)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
        parser.add_argument("--username", default="admin")

    def handle(self, *args, **options):
        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            tenant = Tenant.objects.filter(slug="demo").first() or services.tenant_create(
                slug="demo", name="Demo Tenant"
            )
            for hook in SEED_DEMO_TENANT_HOOKS:
                hook(tenant=tenant, stdout=self.stdout)
            for slug, name in DEMO_PROJECTS:
                if not Project.objects.for_tenant(tenant).filter(slug=slug).exists():
                    services.project_create(tenant=tenant, slug=slug, name=name)
            user_model = get_user_model()
            user, _ = user_model.objects.get_or_create(
                username=options["username"], defaults={"email": "admin@example.com"}
            )
            user.is_staff = True
            user.is_superuser = True
            user.set_password(password)
            user.save()
            services.membership_set(tenant=tenant, user=user, role="owner")
            _, plaintext = services.api_key_issue(
                tenant=tenant, name="demo key", scopes=list(all_scopes()), created_by=user
            )
            for hook in SEED_DEMO_HOOKS:
                hook(tenant=tenant, stdout=self.stdout)
        result = {
            "tenant": tenant.slug,
            "projects": [slug for slug, _ in DEMO_PROJECTS],
            "username": user.get_username(),
            "password": password,
            "api_key": plaintext,
        }
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(self.style.SUCCESS("Demo tenant ready."))
        self.stdout.write(
            f"  tenant:   {result['tenant']} (projects: {', '.join(result['projects'])})"
        )
        self.stdout.write(f"  login:    {result['username']} / {result['password']}")
        self.stdout.write(f"  API key:  {result['api_key']}  (shown once)")
