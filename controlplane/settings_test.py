"""Settings for the test suite: PostgreSQL + Redis on localhost unless the environment says otherwise."""

import os

os.environ.setdefault("TOLLGATE_ENV", "test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tollgate")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("LEDGER_SIGNING_KEY", "dGVzdC1vbmx5LWxlZGdlci1zaWduaW5nLWtleS0zMmI=")
os.environ.setdefault("SIGNING_KEY_ENCRYPTION_KEY", "dGVzdC1vbmx5LXNpZ25pbmcta2V5LWVuY3J5cHRpb24=")
os.environ.setdefault("BYOK_KEKS", "1:dGVzdC1vbmx5LWJ5b2sta2VrLXZlcnNpb24tMS0zMmI=")
# The suite drives many requests per key quickly; the gates' rate limits are tested on their own.
os.environ.setdefault("PROTECTION_KEY_BURST", "1000000")
os.environ.setdefault("PROTECTION_TENANT_BURST", "1000000")
os.environ.setdefault("PROTECTION_GLOBAL_BURST", "1000000")
os.environ.setdefault("API_KEY_PEPPER", "test-only-pepper-not-for-production-use-0123456789")

from controlplane.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast test users only
