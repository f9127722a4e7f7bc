"""Calendar arithmetic for budget periods (UTC months or days). Pure functions."""

from __future__ import annotations

import calendar
from datetime import date, timedelta


def period_bounds(period: str, day: date) -> tuple[date, date]:
    """[start, end) of the monthly or daily period containing ``day``."""
    if period == "daily":
        return day, day + timedelta(days=1)
    start = day.replace(day=1)
    days = calendar.monthrange(day.year, day.month)[1]
    return start, start + timedelta(days=days)


def days_left_including_today(period: str, day: date) -> tuple[int, int]:
    """(days in the period, days left counting today)."""
    start, end = period_bounds(period, day)
    return (end - start).days, (end - day).days
