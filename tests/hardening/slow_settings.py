"""Test settings with test-only slow views mounted (tests/hardening/slow_urls.py)."""

from controlplane.settings_test import *  # noqa: F403

ROOT_URLCONF = "tests.hardening.slow_urls"
