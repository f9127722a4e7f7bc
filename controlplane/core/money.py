"""Money: integer micro-dollars inside, USD decimal strings at the edges. No floats."""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

MICROS_PER_USD = 1_000_000
MAX_MICROS = 10**17  # 100 billion USD: far above any real budget, far below BigInteger limits.
_USD_RE = re.compile(r"^(?P<sign>-)?(?P<int>0|[1-9][0-9]*)(?:\.(?P<frac>[0-9]+))?$")
_MAX_INT_DIGITS = len(str(MAX_MICROS // MICROS_PER_USD))


class MoneyError(ValueError):
    """A USD amount string that is not a plain decimal with at most 6 decimals."""


def parse_usd(value: str, *, allow_negative: bool = False) -> int:
    """Parse a USD decimal string ("812.50") into micro-dollars, exactly."""
    if not isinstance(value, str):
        raise MoneyError('Send money as a decimal string, e.g. "12.50".')
    match = _USD_RE.fullmatch(value)
    if match is None:
        raise MoneyError(
            'Use a plain decimal string with at most 6 decimals, e.g. "12.50" '
            "(no exponent, no thousands separator, no NaN)."
        )
    if match["sign"] and not allow_negative:
        raise MoneyError("Must not be negative.")
    too_large = f"Amount is too large: at most {format_usd(MAX_MICROS)} USD."
    if len(match["int"]) > _MAX_INT_DIGITS:  # checked before int(): digits can be megabytes
        raise MoneyError(too_large)
    if match["frac"] and len(match["frac"]) > 6:
        raise MoneyError("Too many decimals: at most 6 (micro-dollars).")
    frac = (match["frac"] or "").ljust(6, "0")
    micros = int(match["int"]) * MICROS_PER_USD + int(frac)
    if micros > MAX_MICROS:
        raise MoneyError(too_large)
    return -micros if match["sign"] else micros


def format_usd(micros: int) -> str:
    """Render micro-dollars as a USD string with 2 to 6 decimals ("120.00", "0.000001")."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(int(micros)), MICROS_PER_USD)
    frac_text = f"{frac:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}{whole}.{frac_text}"


def usd_to_micros_round_up(amount: Decimal | int | str) -> int:
    """Convert any exact decimal USD amount to micro-dollars, rounding up (costs never round down)."""
    try:
        dec = Decimal(amount) if not isinstance(amount, Decimal) else amount
    except InvalidOperation as exc:
        raise MoneyError(f"Not a decimal amount: {amount!r}") from exc
    if not dec.is_finite():
        raise MoneyError("Amount must be finite.")
    return int((dec * MICROS_PER_USD).to_integral_value(rounding=ROUND_CEILING))


def ceil_div(numerator: int, denominator: int) -> int:
    """Integer division rounding toward positive infinity."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    return -((-numerator) // denominator)
