"""Print the policy document JSON Schema (docs/policy.schema.json is generated from this)."""

import json

from django.core.management.base import BaseCommand

from enforcement.policy.schema import POLICY_SCHEMA


class Command(BaseCommand):
    help = "Print the JSON Schema of policy documents."

    def handle(self, *args, **options):
        self.stdout.write(json.dumps(POLICY_SCHEMA, indent=2, sort_keys=True))
