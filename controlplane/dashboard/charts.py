"""Server-rendered SVG bar chart of daily spend (no JavaScript, no chart library). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from controlplane.core.money import MICROS_PER_USD

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 28


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: date
    micros: int
    future: bool


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[Tick]
    labels: list[tuple[float, str]]  # x, day label under some bars
    baseline: float
    left: int
    right: int


def _nice_max(value: int) -> int:
    """A round USD ceiling (1, 2, 5 x 10^n) above ``value`` micro-dollars."""
    usd = max(value / MICROS_PER_USD, 1.0)
    magnitude = 10 ** (len(str(int(usd))) - 1)
    for step in (1, 2, 5, 10):
        if usd <= step * magnitude:
            return step * magnitude * MICROS_PER_USD
    return 10 * magnitude * MICROS_PER_USD


def spend_chart(*, start: date, end: date, today: date, spend: dict[date, int]) -> Chart:
    """One bar per day of [start, end); days after ``today`` are drawn as empty slots."""
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    top_value = _nice_max(max(spend.values(), default=0))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(days), 1)
    bars = []
    labels = []
    for index, day in enumerate(days):
        amount = spend.get(day, 0)
        height = plot_h * amount / top_value if top_value else 0
        x = LEFT + index * slot + slot * 0.15
        bars.append(
            Bar(
                x=round(x, 1),
                y=round(TOP + plot_h - height, 1),
                width=round(slot * 0.7, 1),
                height=round(height, 1),
                day=day,
                micros=amount,
                future=day > today,
            )
        )
        if day.day == 1 or day.day % 5 == 0:
            labels.append((round(x + slot * 0.35, 1), str(day.day)))
    ticks = [
        Tick(
            y=round(TOP + plot_h - plot_h * fraction, 1),
            label=f"{top_value * fraction / MICROS_PER_USD:,.0f}",
        )
        for fraction in (0, 0.5, 1)
    ]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        bars=bars,
        ticks=ticks,
        labels=labels,
        baseline=TOP + plot_h,
        left=LEFT,
        right=WIDTH - RIGHT,
    )
