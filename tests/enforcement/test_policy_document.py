"""Policy document validation: schema, CEL, consistency; errors name the field and YAML line."""

from __future__ import annotations

import json

import pytest

from enforcement.policy.compiled import compile_policy
from enforcement.policy.document import document_sha256, parse_text, validate_document
from enforcement.policy.schema import DEFAULT_DOCUMENT, POLICY_SCHEMA


def check(text: str):
    data, issues = parse_text(text)
    assert not issues, issues
    return validate_document(data, text=text)


def fields(result):
    return {(e.field, e.code) for e in result.errors}


def test_the_default_document_is_valid_and_stable():
    result = validate_document(DEFAULT_DOCUMENT)
    assert result.ok and not result.warnings
    assert document_sha256(result.document) == document_sha256(
        validate_document(json.loads(json.dumps(DEFAULT_DOCUMENT))).document
    )


def test_minimal_document_gets_defaults_merged():
    result = check("version: 1\nmodes:\n  default: {prod: soft}\n")
    assert result.ok
    assert result.document["modes"]["default"] == {"prod": "soft"}
    assert result.document["fail_modes"] == DEFAULT_DOCUMENT["fail_modes"]
    assert result.document["unit_prices"]["kubernetes"]["hours_per_month"] == 730


def test_unknown_fields_are_named_with_their_path_and_line():
    text = "version: 1\nmodes:\n  default:\n    prod: hard\n    staging: soft\nbogus: 1\n"
    result = check(text)
    assert not result.ok
    by_field = {e.field: e for e in result.errors}
    assert by_field["modes.default.staging"].code == "unknown_field"
    assert by_field["modes.default.staging"].line == 5
    assert by_field["bogus"].line == 6


def test_wrong_types_and_enums_are_reported_all_at_once():
    text = (
        "version: 1\n"
        "decision_deadline_ms: fast\n"
        "fail_modes: {prod: maybe}\n"
        "ceilings: {plan_usd: 12.5}\n"
        "approval: {threshold_usd: '-1'}\n"
    )
    result = check(text)
    assert {e.field for e in result.errors} == {
        "decision_deadline_ms",
        "fail_modes.prod",
        "ceilings.plan_usd",
        "approval.threshold_usd",
    }
    assert next(e for e in result.errors if e.field == "fail_modes.prod").line == 3


def test_version_is_required():
    result = validate_document({"rules": []})
    assert ("", "required") in fields(result)


def test_a_document_must_be_a_mapping():
    assert fields(validate_document(["version", 1])) == {("", "type")}


@pytest.mark.parametrize(
    ("when", "code"),
    [
        ("request.amount_usd >", "cel_syntax"),
        ("reqest.amount_usd > 1.0", "cel_unknown_variable"),
        ("1 + 'a' == 2", "cel_runtime"),
        ("1 + 2", "cel_type"),
    ],
)
def test_bad_cel_is_an_error_pointing_at_the_rule(when, code):
    text = f"version: 1\nrules:\n  - id: ok\n    when: 'true'\n    then: allow\n  - id: bad\n    when: {json.dumps(when)}\n    then: deny\n"
    result = check(text)
    assert [(e.field, e.code) for e in result.errors] == [("rules[1].when", code)]
    assert result.errors[0].line == 7
    assert result.document is None


def test_duplicate_rule_ids_are_an_error():
    document = {
        "version": 1,
        "rules": [
            {"id": "a", "when": "request.amount_usd > 1.0", "then": "deny"},
            {"id": "a", "when": "request.amount_usd > 2.0", "then": "deny"},
        ],
    }
    result = validate_document(document)
    assert [(e.field, e.code) for e in result.errors] == [("rules[1].id", "duplicate")]


def test_a_rule_that_can_never_match_is_a_warning_not_an_error():
    result = check("version: 1\nrules:\n  - id: never\n    when: 1 > 2\n    then: deny\n")
    assert result.ok
    assert [(w.field, w.code, w.line) for w in result.warnings] == [
        ("rules[0].when", "never_matches", 4)
    ]


def test_approvers_only_on_approval_rules_and_ttl_consistency():
    document = {
        "version": 1,
        "reservations": {"default_ttl_seconds": 100, "max_ttl_seconds": 50},
        "rules": [
            {"id": "x", "when": "true", "then": "deny", "approvers": {"quorum": 2}},
        ],
    }
    assert fields(validate_document(document)) == {
        ("rules[0].approvers", "invalid"),
        ("reservations.default_ttl_seconds", "invalid"),
    }


def test_rule_fields_are_validated():
    document = {
        "version": 1,
        "rules": [
            {"id": "Bad Id", "when": "true", "then": "explode", "reason_code": "lower"},
        ],
    }
    assert {e.field for e in validate_document(document).errors} == {
        "rules[0].id",
        "rules[0].then",
        "rules[0].reason_code",
    }


def test_yaml_and_json_parse_errors_carry_a_line():
    _, issues = parse_text("version: 1\nrules: [\n", content_type="application/yaml")
    assert issues[0].code == "parse_error" and issues[0].line is not None
    _, issues = parse_text('{"version": 1,\n "x": }', content_type="application/json")
    assert issues[0].code == "parse_error" and issues[0].line == 2


def test_json_schema_is_published_in_docs():
    from pathlib import Path

    published = json.loads(
        (Path(__file__).resolve().parents[2] / "docs" / "policy.schema.json").read_text()
    )
    assert published == json.loads(json.dumps(POLICY_SCHEMA)), (
        "docs/policy.schema.json is stale: run `python manage.py policy_schema > docs/policy.schema.json`"
    )


def test_compiled_policy_reads_the_document():
    document = validate_document(
        {
            "version": 1,
            "environments": {"prod": ["live"]},
            "modes": {
                "default": {"prod": "hard", "nonprod": "soft"},
                "sources": {"k8s": {"prod": "shadow"}},
            },
            "ceilings": {"plan_usd": "100", "enterprise_usd": "1000.5"},
            "approval": {"threshold_usd": "50", "approvers": {"quorum": 2, "groups": ["finops"]}},
            "rules": [
                {
                    "id": "r1",
                    "when": "request.amount_usd > 10.0",
                    "then": "require_approval",
                    "approvers": {"roles": ["owner"], "quorum": 3},
                }
            ],
        }
    ).document
    policy = compile_policy(document, version=7)
    assert policy.env_class("live") == "prod" and policy.env_class("prod") == "nonprod"
    assert policy.mode("k8s", "prod") == "shadow" and policy.mode("k8s", "nonprod") == "soft"
    assert policy.mode("terraform", "prod") == "hard"
    assert policy.plan_ceiling == 100_000_000 and policy.enterprise_ceiling == 1_000_500_000
    assert policy.approval_threshold == 50_000_000
    default_routing = policy.approval_routing(rule_id=None, env_class="prod")
    assert default_routing["quorum"] == 2 and default_routing["groups"] == ["finops"]
    assert default_routing["roles"] == []  # explicit approvers replace the defaults
    assert default_routing["separate_from_requester"] is True  # prod default
    assert (
        policy.approval_routing(rule_id=None, env_class="nonprod")["separate_from_requester"]
        is False
    )
    rule_routing = policy.approval_routing(rule_id="r1", env_class="prod")
    assert rule_routing["quorum"] == 3 and rule_routing["roles"] == ["owner"]
    assert rule_routing["groups"] == [] and rule_routing["rule_id"] == "r1"
