"""Rotate the approval-token signing key: new key active, old key retiring, expired ones retired."""

from django.core.management.base import BaseCommand

from enforcement.services.tokens import signing_key_rotate, signing_keys_retire


class Command(BaseCommand):
    help = (
        "Make a new Ed25519 approval-token signing key active; the previous active key becomes "
        "retiring (it still verifies the tokens it signed until they expire). Then retire every "
        "retiring key whose tokens have all expired."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--retire-only",
            action="store_true",
            help="Do not rotate; only retire retiring keys whose tokens have all expired.",
        )

    def handle(self, *args, retire_only: bool = False, **options):
        if not retire_only:
            new, old = signing_key_rotate()
            self.stdout.write(f"active: {new.kid}")
            if old is not None:
                until = old.verify_until.isoformat() if old.verify_until else "no live tokens"
                self.stdout.write(f"retiring: {old.kid} (verifies until {until})")
        for kid in signing_keys_retire():
            self.stdout.write(f"retired: {kid}")
