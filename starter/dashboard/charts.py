"""The geometry of the dashboard's small charts, computed on the server.

Charts are inline SVG drawn by the templates from these shapes, so the page needs no script
library and no build step. Values arrive as numbers or decimal strings (money stays exact:
geometry is done in ``Decimal`` and only the pixel coordinates are rounded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

Number = Decimal | float | int | str | None

#: The age buckets of open exceptions, youngest first (KPI report ``open_exceptions.by_age``).
AGE_BUCKETS = ("<4h", "4-24h", "1-3d", ">3d")


def to_decimal(value: Number) -> Decimal | None:
    """A value as a ``Decimal``; ``None`` for a missing or non-numeric one."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _px(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.1'))}"


@dataclass(frozen=True)
class Point:
    """One value of a series, where it is drawn, and its label."""

    x: str
    y: str
    label: str
    value: Decimal


@dataclass(frozen=True)
class Sparkline:
    """A line through a series; gaps (``None``) are skipped, their labels kept on the axis."""

    width: int
    height: int
    points: list[Point]
    first_label: str
    last_label: str
    minimum: Decimal
    maximum: Decimal

    @property
    def polyline(self) -> str:
        """The ``points`` attribute of an SVG ``polyline``."""
        return " ".join(f"{p.x},{p.y}" for p in self.points)

    @property
    def latest(self) -> Point:
        """The most recent value drawn."""
        return self.points[-1]


def sparkline(
    labels: Sequence[str], values: Sequence[Number], *, width: int = 180, height: int = 44
) -> Sparkline | None:
    """A sparkline of ``values`` (one per label, oldest first); ``None`` with nothing to draw."""
    pad = Decimal(4)
    numbers = [to_decimal(v) for v in values]
    present = [n for n in numbers if n is not None]
    if not present or len(labels) != len(values):
        return None
    low, high = min(present), max(present)
    span = high - low or Decimal(1)
    step = (Decimal(width) - 2 * pad) / max(len(values) - 1, 1)
    inner = Decimal(height) - 2 * pad
    points = [
        Point(
            x=_px(pad + step * i if len(values) > 1 else Decimal(width) / 2),
            y=_px(pad + inner - (n - low) / span * inner if high != low else Decimal(height) / 2),
            label=label,
            value=n,
        )
        for i, (label, n) in enumerate(zip(labels, numbers, strict=True))
        if n is not None
    ]
    return Sparkline(width, height, points, labels[0], labels[-1], low, high)


@dataclass(frozen=True)
class Bar:
    """One bar of a bar chart."""

    x: str
    y: str
    width: str
    height: str
    label: str
    value: Decimal


def bar_chart(
    labels: Sequence[str], values: Sequence[Number], *, width: int = 180, height: int = 44
) -> list[Bar]:
    """Bars for ``values`` (missing ones count as zero), scaled to the largest."""
    if not values or len(labels) != len(values):
        return []
    numbers = [to_decimal(v) or Decimal(0) for v in values]
    top = max(max(numbers), Decimal(0)) or Decimal(1)
    slot = Decimal(width) / len(numbers)
    gap = min(Decimal(2), slot / 4)
    bars = []
    for i, (label, n) in enumerate(zip(labels, numbers, strict=True)):
        # A zero still gets a hairline, so an empty month reads as "none", not as missing.
        tall = max(max(n, Decimal(0)) / top * (height - 1), Decimal(1))
        bars.append(
            Bar(
                x=_px(slot * i + gap / 2),
                y=_px(Decimal(height) - tall),
                width=_px(slot - gap),
                height=_px(tall),
                label=label,
                value=n,
            )
        )
    return bars


@dataclass(frozen=True)
class Segment:
    """One part of a stacked bar."""

    x: str
    width: str
    bucket: str
    count: int
    index: int


def stacked_bar(counts: dict[str, int], *, width: int = 180) -> list[Segment]:
    """The age buckets of a queue's open exceptions as one horizontal bar, youngest first."""
    total = sum(max(int(counts.get(b, 0)), 0) for b in AGE_BUCKETS)
    if total == 0:
        return []
    segments: list[Segment] = []
    x = Decimal(0)
    for index, bucket in enumerate(AGE_BUCKETS):
        count = max(int(counts.get(bucket, 0)), 0)
        if count == 0:
            continue
        wide = Decimal(width) * count / total
        segments.append(Segment(_px(x), _px(wide), bucket, count, index))
        x += wide
    return segments
