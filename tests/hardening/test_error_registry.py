"""Every error code has a remediation, is registered, and is documented; messages say what is
wrong (issue 11, item 7)."""

from __future__ import annotations

import ast
import enum
import importlib
import re
import uuid
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings

from controlplane.core.errors import registered_codes
from tests.api_contracts import assert_problem


def _code_enums() -> list[type[enum.StrEnum]]:
    """Every ``*ErrorCode`` enum in the ``errors`` module of every project app."""
    found = []
    for config in apps.get_app_configs():
        if not str(Path(config.path)).startswith(str(settings.BASE_DIR)):
            continue
        try:
            module = importlib.import_module(f"{config.name}.errors")
        except ModuleNotFoundError:
            continue
        found += [
            value
            for name, value in vars(module).items()
            if name.endswith("ErrorCode")
            and isinstance(value, type)
            and issubclass(value, enum.Enum)
        ]
    return found


def test_the_walk_finds_every_app_enum():
    names = {cls.__name__ for cls in _code_enums()}
    assert {
        "CoreErrorCode",
        "TenancyErrorCode",
        "AuditErrorCode",
        "IdentityErrorCode",
        "BillingErrorCode",
        "ByokErrorCode",
        "EnforcementErrorCode",
    } <= names


def _literal_codes() -> dict[str, str]:
    """UPPER_SNAKE codes written as string literals in the project's code: the first argument
    of ``TollgateError(...)`` (and of ``super().__init__`` in its subclasses) and any
    ``code="..."`` keyword (problem responses of plain Django views: webhooks, middleware)."""
    found: dict[str, str] = {}
    for path in sorted(settings.BASE_DIR.rglob("*.py")):
        parts = path.relative_to(settings.BASE_DIR).parts
        if parts[0] in (".venv", "tests", "bench", "docs") or "migrations" in parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            values = [kw.value for kw in node.keywords if kw.arg == "code"]
            if name in ("TollgateError", "__init__") and node.args:
                values.append(node.args[0])
            for value in values:
                literal = value.value if isinstance(value, ast.Constant) else None
                if isinstance(literal, str) and re.fullmatch(
                    r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+", literal
                ):
                    found.setdefault(literal, f"{path.name}:{node.lineno}")
    return found


def test_codes_written_as_literals_are_registered_too():
    literals = _literal_codes()
    assert {"VALIDATION_FAILED", "NOT_FOUND"} <= set(literals), literals  # the scan sees them
    registry = registered_codes()
    unregistered = {code: where for code, where in literals.items() if code not in registry}
    assert not unregistered, f"register these codes in an app's errors.py: {unregistered}"


def test_every_identity_and_billing_code_has_a_remediation_and_a_doc_entry():
    """The apps added after the registry (SCIM administration, billing) are in the walk: their
    codes are registered, hinted and documented like every other."""
    from billing.errors import BillingErrorCode
    from controlplane.identity.errors import IdentityErrorCode

    text = (settings.BASE_DIR / "docs" / "errors.md").read_text(encoding="utf-8")
    for code in [*IdentityErrorCode, *BillingErrorCode]:
        assert registered_codes().get(code.value), code
        assert f"`{code.value}`" in text, code


def test_every_code_in_the_registry_has_a_remediation():
    registry = registered_codes()
    for cls in _code_enums():
        for code in cls:
            assert code.value in registry, f"{cls.__name__}.{code.name} is not registered"
            hint = registry[code.value]
            assert hint and hint.strip() and hint[0].isupper(), (code, hint)


def test_every_registered_code_is_documented():
    text = (settings.BASE_DIR / "docs" / "errors.md").read_text(encoding="utf-8")
    missing = sorted(code for code in registered_codes() if f"`{code}`" not in text)
    assert not missing, f"docs/errors.md lacks {missing}"


@pytest.mark.django_db
def test_a_problem_without_its_own_hint_gets_the_registered_one(client_a):
    response = client_a.get("/api/v1/no-such-route")
    assert assert_problem(response, 404, "NOT_FOUND")["remediation"]


# --- messages say what is wrong ----------------------------------------------------------------

GATE = "/api/v1/gate/decisions"


@pytest.fixture
def payments(tenant):
    from tests import factories

    return factories.make_project(tenant, "payments")


@pytest.mark.django_db
@pytest.mark.parametrize("amount", ["1234567890123.00", "100000000000.01", "9" * 5000])
def test_an_over_long_amount_is_too_large(client_a, payments, amount):
    response = client_a.post(
        GATE,
        {"project": "payments", "environment": "prod", "estimated_cost_usd": amount},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    problem = assert_problem(response, 400, "VALIDATION_FAILED")
    assert "too large" in problem["errors"][0]["message"].lower(), problem


@pytest.mark.django_db
def test_too_many_decimals_says_so(client_a, payments):
    response = client_a.post(
        GATE,
        {"project": "payments", "environment": "prod", "estimated_cost_usd": "1.0000001"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    problem = assert_problem(response, 400, "VALIDATION_FAILED")
    assert "decimals" in problem["errors"][0]["message"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("key", "code", "word"),
    [
        ("clé-ünïcode", "invalid", "invalid"),  # latin-1, as a WSGI server passes it on
        ("tab\there", "invalid", "invalid"),
        ("k" * 256, "max_length", "too long"),
        (None, "required", "required"),
    ],
    ids=["non-ascii", "control", "too-long", "missing"],
)
def test_idempotency_key_errors_name_the_problem(client_a, payments, key, code, word):
    body = {"project": "payments", "environment": "prod", "estimated_cost_usd": "1.00"}
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    response = client_a.post(GATE, body, format="json", **headers)
    problem = assert_problem(response, 400, "IDEMPOTENCY_KEY_REQUIRED")
    assert problem["errors"][0]["code"] == code
    assert word in (problem["detail"] + problem["errors"][0]["message"]).lower()


@pytest.mark.django_db
def test_a_non_string_idempotency_key_is_invalid_not_a_500(client_a, payments):
    body = {"project": "payments", "environment": "prod", "estimated_cost_usd": "1.00"}
    response = client_a.post(GATE, {**body, "idempotency_key": 5}, format="json")
    assert (
        assert_problem(response, 400, "IDEMPOTENCY_KEY_REQUIRED")["errors"][0]["code"] == "invalid"
    )
