import pytest

from controlplane.core.canonical import canonical_json, fingerprint
from controlplane.core.ids import looks_like_id, new_id


def test_canonical_json_is_order_independent_and_compact():
    assert canonical_json({"b": 1, "a": [1, "x"]}) == '{"a":[1,"x"],"b":1}'
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    assert fingerprint({"a": 1}).startswith("sha256:")


def test_canonical_json_refuses_floats_and_nan():
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})
    with pytest.raises(TypeError):
        canonical_json({"x": object()})


def test_ids_are_prefixed_and_time_ordered():
    first, second = new_id("dec"), new_id("dec")
    assert looks_like_id(first, "dec") and len(first) == 30
    assert first[:14] <= second[:14]  # "dec_" + 10 characters encode the milliseconds
    assert not looks_like_id(first, "res")
