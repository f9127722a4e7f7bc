"""The gate's fast body check accepts only what the serializer accepts, with the same result."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from enforcement.api.fastparse import gate_body_fast
from enforcement.api.serializers import GateDecisionRequestSerializer


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _serializer(body):
    serializer = GateDecisionRequestSerializer(data=body)
    return _plain(serializer.validated_data) if serializer.is_valid() else None


tricky_text = st.one_of(
    st.sampled_from(
        ["", " ", "prod", " prod", "prod ", "a\x00b", "p-1", "P_1", "a.b", "x" * 64, "é", "\n"]
    ),
    st.text(max_size=8),
)
money = st.one_of(
    st.none(),
    st.sampled_from(["0", "1.00", "12.5", "-1.00", "1e3", "1.1234567", " 1.00", "abc", ""]),
    st.integers(-3, 3),
    st.floats(allow_nan=True),
)
scalar = st.one_of(st.none(), st.booleans(), st.integers(-2, 5), tricky_text)
body = st.dictionaries(
    st.sampled_from([*sorted(GateDecisionRequestSerializer._declared_fields), "unknown"]),
    st.one_of(
        scalar,
        money,
        st.dictionaries(tricky_text, scalar, max_size=3),
        st.fixed_dictionaries(
            {},
            optional={
                "type": scalar,
                "id": scalar,
                "attributes": st.dictionaries(tricky_text, scalar, max_size=2),
            },
        ),
        st.lists(scalar, max_size=2),
    ),
    max_size=8,
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body)
@example(
    {
        "project": "payments",
        "environment": "prod",
        "estimated_cost_usd": "12.50",
        "ttl_seconds": 600,
        "labels": {"team": "core"},
        "resource": {"type": "aws_instance", "attributes": {"size": "m5.large"}},
    }
)
def test_fast_check_agrees_with_the_serializer(data):
    fast = gate_body_fast(data)
    if fast is not None:
        assert fast == _serializer(data)


def test_the_usual_bodies_take_the_fast_path():
    usual = {
        "source": "terraform",
        "project": "payments",
        "environment": "prod",
        "action": "apply",
        "resource": {"type": "aws_instance", "id": "web", "attributes": {"n": 2}},
        "estimated_cost_usd": "12.50",
        "monthly_delta_usd": None,
        "labels": {"team": "core"},
        "requester": "ci@example.com",
        "ttl_seconds": 600,
        "idempotency_key": "run-1",
    }
    assert gate_body_fast(usual) == _serializer(usual)
    assert gate_body_fast({"project": "p", "environment": "dev", "estimated_cost_usd": "1"}) == {
        "source": "api",
        "action": "",
        "labels": {},
        "requester": "",
        "project": "p",
        "environment": "dev",
        "estimated_cost_usd": 1_000_000,
    }


def test_invalid_bodies_are_left_to_the_serializer():
    for bad in (
        [],
        {"project": " payments"},
        {"estimated_cost_usd": 1.5},
        {"ttl_seconds": True},
        {"ttl_seconds": "60"},
        {"labels": {"team": ""}},
        {"surprise": 1},
        {"action": "a\x00"},
    ):
        assert gate_body_fast(bad) is None


def test_the_fast_check_applies_the_same_input_limits():
    """Free-form limits are one function used by both paths: over a limit, neither accepts."""
    base = {"project": "payments", "environment": "prod", "estimated_cost_usd": "1.00"}
    over = [
        {"labels": {f"l{i}": "v" for i in range(65)}},
        {"labels": {"k" * 129: "v"}},
        {"resource": {"attributes": {f"k{i}": i for i in range(257)}}},
        {"resource": {"attributes": {"x": "y" * 17_000}}},
        {"resource": {"attributes": {"a": [[[[[[[[[1]]]]]]]]]}}},
        {"resource": {"attributes": {"n": float("inf")}}},
    ]
    for extra in over:
        body = base | extra
        assert gate_body_fast(body) is None, extra
        assert _serializer(body) is None, extra
    at_limit = base | {"labels": {f"l{i}": "v" for i in range(64)}}
    assert gate_body_fast(at_limit) == _serializer(at_limit) is not None
