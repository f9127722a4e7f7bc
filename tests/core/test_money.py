from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controlplane.core.money import (
    MoneyError,
    ceil_div,
    format_usd,
    parse_usd,
    usd_to_micros_round_up,
)


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("0", 0),
        ("812.50", 812_500_000),
        ("0.000001", 1),
        ("12.345678", 12_345_678),
        ("7", 7_000_000),
    ],
)
def test_parse_usd_is_exact(text, micros):
    assert parse_usd(text) == micros


@pytest.mark.parametrize(
    "text",
    ["1e3", "NaN", "Infinity", "-1", "1.0000001", "01.5", "1,000.00", " 1", "1.", ".5", "", "+1"],
)
def test_parse_usd_rejects_non_plain_decimals(text):
    with pytest.raises(MoneyError):
        parse_usd(text)


def test_negative_only_when_allowed():
    assert parse_usd("-2.5", allow_negative=True) == -2_500_000


def test_non_string_is_refused():
    with pytest.raises(MoneyError):
        parse_usd(12.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("micros", "text"),
    [(120_000_000, "120.00"), (812_500_000, "812.50"), (1, "0.000001"), (-1_500_000, "-1.50")],
)
def test_format_usd(micros, text):
    assert format_usd(micros) == text


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_format_then_parse_round_trips(micros):
    assert parse_usd(format_usd(micros), allow_negative=True) == micros


def test_rounding_up_never_undercharges():
    assert usd_to_micros_round_up(Decimal("0.0000001")) == 1
    assert usd_to_micros_round_up("1.0000000") == 1_000_000
    assert ceil_div(7, 2) == 4
    with pytest.raises(MoneyError):
        usd_to_micros_round_up("NaN")
