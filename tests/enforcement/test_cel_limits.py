"""CEL cost limits (issue 17 item 2): bounded at validation, guarded at run time."""

from __future__ import annotations

import pytest

from enforcement.policy import celcost
from enforcement.policy.celcost import CelLimitError, analyse, regex_cost
from enforcement.policy.document import validate_document
from tests.api_contracts import assert_problem
from tests.enforcement.helpers import policy_document

TEN = "[" + ",".join(str(i) for i in range(10)) + "]"


def nested(depth: int, var: str = "x") -> str:
    """The attack of issue 17: comprehensions nested ``depth`` deep over a 10-element list."""
    expr = "true"
    for level in range(depth):
        expr = f"{TEN}.all({var}{level}, {expr} || {var}{level} == 100)"
    return expr


def code_of(expression: str) -> str | None:
    try:
        analyse(expression)
    except CelLimitError as exc:
        return exc.code
    return None


@pytest.mark.parametrize(
    ("expression", "code"),
    [
        ("request.amount_usd > 500.0", None),
        (nested(1), None),
        (nested(2), None),
        (nested(3), "cel_too_deep"),
        (nested(8), "cel_too_deep"),
        ("[1,2].all(request, request > 0)", "cel_shadowing"),
        ("request.labels.exists(k, k == 'team')", None),
        ("request.labels.all(k, request.labels.exists(j, j == k))", None),  # 64 x 64
        (
            "request.resource.attributes.a.all(x, request.resource.attributes.b.exists(y, y == x))",
            "cel_cost",  # 256 x 256 elements: no cost bound under the limit
        ),
        ("request.resource.attributes.objs.all(o, o.tags.exists(t, t == 'x'))", None),
        ("request.labels.map(k, k).exists(j, j == 'a')", "cel_cost"),  # computed receiver
        ("([1, 2] + [3]).all(x, x > 0)", "cel_cost"),
        ("size(request.resource.attributes.items.map(x, x + 1)) > 0", None),
        ("request.action.matches('^compute\\\\.')", None),
        ("request.action.matches(request.labels.pattern)", "cel_regex"),
        ("request.action.matches('\\\\w{1000}')", "cel_regex"),
        ("request.action.matches(r'(\\w{1,50}){1,50}')", "cel_regex"),
        ("request.action.matches(r'(?-u:\\w)+@[a-z]+')", None),
        ("matches(request.action, 'a')", "cel_regex"),
        ("(" * 33 + "true" + ")" * 33, "cel_too_deep"),
        ("(" * 32 + "true" + ")" * 32, None),
        ("true || " * 1000 + "true", "cel_too_long"),
        (
            "["
            + ",".join(["1"] * 600)
            + "].exists(x, ["
            + ",".join(["1"] * 600)
            + "].exists(y, x == y))",
            "cel_cost",
        ),
    ],
)
def test_static_limits(expression, code):
    assert code_of(expression) == code


def test_cost_grows_with_what_a_comprehension_iterates_over():
    small = analyse("[1, 2, 3].exists(x, x == 2)").cost
    data = analyse("request.labels.exists(x, x == 'a')").cost
    nested_data = analyse("request.labels.exists(x, request.labels.exists(y, y == x))").cost
    assert small < data < nested_data <= celcost.MAX_RULE_COST


@pytest.mark.parametrize(
    ("pattern", "cheap"),
    [("^a+$", True), ("[a-z]{1,20}", True), ("\\w{1000}", False), ("\\pL{50}", False)],
)
def test_regex_cost_estimate(pattern, cheap):
    assert (regex_cost(pattern) <= celcost.MAX_REGEX_COST) is cheap


def _rule(when: str) -> dict:
    return {"id": "r", "when": when, "then": "deny"}


def test_validation_reports_each_limit_with_its_field():
    result = validate_document(policy_document(rules=[_rule(nested(8))]))
    assert [(i.field, i.code) for i in result.errors] == [("rules[0].when", "cel_too_deep")]


def test_loop_variables_are_not_unknown_variables_any_more():
    result = validate_document(
        policy_document(rules=[_rule("request.labels.exists(k, k.startsWith('team'))")])
    )
    assert result.ok, result.errors


def test_unknown_functions_are_refused_at_validation():
    result = validate_document(policy_document(rules=[_rule("request.action.lowerAscii() == 'a'")]))
    assert [i.code for i in result.errors] == ["cel_unknown_function"]


def test_the_whole_policy_has_a_cost_budget():
    heavy = "request.labels.all(k, request.labels.exists(j, j == k + 'x'))"
    per_rule = analyse(heavy).cost
    count = celcost.MAX_POLICY_COST // per_rule + 1
    rules = [{"id": f"r{i}", "when": heavy, "then": "deny"} for i in range(count)]
    result = validate_document(policy_document(rules=rules))
    assert [(i.field, i.code) for i in result.errors] == [("rules", "cel_cost")]


@pytest.mark.django_db
def test_the_issue_17_attack_is_refused_by_the_api(tenant):
    """A read-only key's simulate (and a draft) with 8 nested comprehensions: 400, no work."""
    from tests.factories import make_api_key

    _, plaintext = make_api_key(tenant, scopes=["policies:read", "policies:write"])
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    document = policy_document(rules=[_rule(nested(8, var="request"))])
    response = client.post(
        "/api/v1/policies/simulate",
        {"document": document, "since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"},
        format="json",
    )
    problem = assert_problem(response, 400, "POLICY_INVALID")
    assert problem["errors"][0]["field"] == "rules[0].when"
    from enforcement.models import SimulationJob

    assert not SimulationJob.objects.exists()
    draft = client.generic(
        "POST",
        "/api/v1/policies",
        'version: 1\nrules:\n  - id: r\n    when: "' + nested(8, var="x") + '"\n    then: deny\n',
        "application/yaml",
    )
    assert assert_problem(draft, 400, "POLICY_INVALID")["errors"][0]["code"] == "cel_too_deep"


def test_the_run_time_guard_turns_an_overrun_into_a_rule_error(monkeypatch):
    """The library cannot be interrupted; a rule that took longer than its budget anyway (a
    policy stored before these limits, a slow machine) answers as a rule error."""
    from enforcement import engine
    from enforcement.policy import evaluate as evaluate_module
    from enforcement.policy.compiled import compile_policy

    document = validate_document(
        policy_document(rules=[_rule("request.amount_usd > 1.0"), _rule_id("s", "true")])
    ).document
    policy = compile_policy(document)
    clock = iter([0.0, 0.0, 0.030, 0.030, 0.031])  # the first rule takes 30 ms (> 25 ms)
    monkeypatch.setattr(evaluate_module, "_timer", lambda: next(clock))
    result = evaluate_module.evaluate(
        policy,
        request=engine.DecisionRequest(
            amount=500_000, source="api", environment="dev", env_class="nonprod", project="p"
        ),
        record={},
        snapshot=engine.Snapshot(budgets=(), grants=()),
        context={},
    )
    assert result.outcome.reason_code == "POLICY_RULE_ERROR"
    assert result.outcome.outcome == engine.Verdict.DENY  # on_rule_error defaults to deny
    assert "evaluation budget exceeded" in result.rule_errors[0]["error"]


def _rule_id(rule_id: str, when: str) -> dict:
    return {"id": rule_id, "when": when, "then": "deny"}
