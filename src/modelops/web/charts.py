"""Chart geometry for the dashboard's pictures, drawn as SVG by ``templates/_charts.html``.

Pure functions from numbers to shapes (coordinates in an SVG viewBox): bar charts and
histograms, a metric across versions, a confusion matrix, a ROC curve and drift per feature.
No plotting library runs in the server for these; labels stay text, escaped by the template.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

WIDTH = 480
HEIGHT = 260
MARGIN_LEFT = 48
MARGIN_RIGHT = 12
MARGIN_TOP = 14
MARGIN_BOTTOM = 46
MAX_LABEL = 14


@dataclass(frozen=True)
class Tick:
    pos: float
    text: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    label: str
    value: str
    cls: str = ""


@dataclass(frozen=True)
class Frame:
    """The plot area inside the viewBox."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    frame: Frame
    bars: list[Bar]
    y_ticks: list[Tick]
    x_labels: list[Tick]
    rotate_labels: bool = False
    y_label: str = ""


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str
    value: str


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    frame: Frame
    path: str
    points: list[Point]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    diagonal: bool = False
    x_label: str = ""
    y_label: str = ""


@dataclass(frozen=True)
class Cell:
    x: float
    y: float
    size: float
    shade: float  # 0..1, the fill opacity
    text: str
    dark: bool  # white text on a dark cell


@dataclass(frozen=True)
class Heatmap:
    width: int
    height: int
    cells: list[Cell]
    row_labels: list[Tick]
    col_labels: list[Tick]
    origin: tuple[float, float]
    side: float


@dataclass(frozen=True)
class HorizontalBars:
    width: int
    height: int
    frame: Frame
    bars: list[Bar]
    x_ticks: list[Tick]
    thresholds: list[tuple[float, str]] = field(default_factory=list)  # (x, css class)


def short(label: Any, limit: int = MAX_LABEL) -> str:
    text = str(label)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt(value: float) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 10_000 or magnitude < 0.001:
        return f"{value:.2e}"
    if magnitude >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks: list[float] = []
    value = start
    while value <= high + step * 0.5 and len(ticks) < 20:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def _frame(width: int, height: int, *, bottom: float = MARGIN_BOTTOM) -> Frame:
    return Frame(MARGIN_LEFT, MARGIN_TOP, width - MARGIN_RIGHT, height - bottom)


def bar_chart(
    labels: Sequence[Any], values: Sequence[float], *, width: int = WIDTH, height: int = HEIGHT,
    y_label: str = "", classes: Sequence[str] | None = None,
) -> BarChart | None:
    """Vertical bars from zero; None when there is nothing to draw."""
    numbers = [float(v) for v in values]
    if not numbers or not all(math.isfinite(v) for v in numbers):
        return None
    rotate = len(numbers) > 6 or any(len(str(label)) > 8 for label in labels)
    frame = _frame(width, height, bottom=MARGIN_BOTTOM + (22 if rotate else 0))
    ticks = nice_ticks(min(0.0, min(numbers)), max(0.0, max(numbers)))
    low, high = ticks[0], ticks[-1]

    def y_of(value: float) -> float:
        return frame.bottom - (value - low) / (high - low) * frame.height

    slot = frame.width / len(numbers)
    gap = min(slot * 0.2, 12)
    bars = []
    for i, (label, value) in enumerate(zip(labels, numbers, strict=True)):
        top, base = y_of(max(value, 0.0)), y_of(min(value, 0.0))
        bars.append(Bar(
            x=frame.left + i * slot + gap / 2, y=top, w=max(slot - gap, 1.0), h=max(base - top, 0.5),
            label=str(label), value=fmt(value), cls=classes[i] if classes else "",
        ))
    return BarChart(
        width=width, height=height, frame=frame, bars=bars,
        y_ticks=[Tick(y_of(t), fmt(t)) for t in ticks],
        x_labels=[Tick(b.x + b.w / 2, short(b.label)) for b in bars],
        rotate_labels=rotate, y_label=y_label,
    )


def histogram(edges: Sequence[float], counts: Sequence[int], *, width: int = WIDTH,
              height: int = HEIGHT) -> BarChart | None:
    """A numeric feature's histogram: bins labelled by their lower edge."""
    if len(edges) < 2 or len(counts) != len(edges) - 1:
        return None
    labels = [fmt(float(edge)) for edge in edges[:-1]]
    return bar_chart(labels, [float(c) for c in counts], width=width, height=height, y_label="rows")


def line_chart(
    labels: Sequence[Any], values: Sequence[float | None], *, width: int = WIDTH,
    height: int = HEIGHT, y_label: str = "",
) -> LineChart | None:
    """A metric across versions: one point per label, gaps where a version lacks the metric."""
    known = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not known:
        return None
    frame = _frame(width, height)
    ticks = nice_ticks(min(known), max(known)) if max(known) > min(known) else nice_ticks(
        min(known) - 0.5 * (abs(min(known)) or 1), max(known) + 0.5 * (abs(max(known)) or 1)
    )
    low, high = ticks[0], ticks[-1]
    step = frame.width / max(len(labels) - 1, 1)
    points: list[Point] = []
    path: list[str] = []
    pen_down = False
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = frame.left + (i * step if len(labels) > 1 else frame.width / 2)
        if value is None or not math.isfinite(float(value)):
            pen_down = False
            continue
        y = frame.bottom - (float(value) - low) / (high - low) * frame.height
        path.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
        pen_down = True
        points.append(Point(x, y, str(label), fmt(float(value))))
    x_ticks = [
        Tick(frame.left + (i * step if len(labels) > 1 else frame.width / 2), short(label))
        for i, label in enumerate(labels)
    ]
    return LineChart(
        width=width, height=height, frame=frame, path=" ".join(path), points=points,
        x_ticks=x_ticks, y_ticks=[Tick(frame.bottom - (t - low) / (high - low) * frame.height, fmt(t)) for t in ticks],
        y_label=y_label,
    )


def roc_chart(fpr: Sequence[float], tpr: Sequence[float], *, size: int = 340) -> LineChart | None:
    """A ROC curve on the unit square, with the chance diagonal."""
    if len(fpr) != len(tpr) or len(fpr) < 2:
        return None
    frame = Frame(MARGIN_LEFT, MARGIN_TOP, size - MARGIN_RIGHT, size - 40)
    pairs = [(float(x), float(y)) for x, y in zip(fpr, tpr, strict=True)]
    if not all(0 <= x <= 1 and 0 <= y <= 1 for x, y in pairs):
        return None
    coords = [(frame.left + x * frame.width, frame.bottom - y * frame.height) for x, y in pairs]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(coords))
    ticks = [0.0, 0.25, 0.5, 0.75, 1.0]
    return LineChart(
        width=size, height=size, frame=frame, path=path, points=[],
        x_ticks=[Tick(frame.left + t * frame.width, fmt(t)) for t in ticks],
        y_ticks=[Tick(frame.bottom - t * frame.height, fmt(t)) for t in ticks],
        diagonal=True, x_label="false positive rate", y_label="true positive rate",
    )


def heatmap(labels: Sequence[Any], matrix: Sequence[Sequence[float]], *, size: int = 340) -> Heatmap | None:
    """A confusion matrix: rows are true labels, columns predicted; darker is more."""
    n = len(labels)
    if n == 0 or len(matrix) != n or any(len(row) != n for row in matrix):
        return None
    label_room = 8 + 6.5 * min(max(len(str(label)) for label in labels), MAX_LABEL)
    left, top = label_room + 16, 24.0
    side = (size - left - 8) / n
    peak = max((float(v) for row in matrix for v in row), default=0.0) or 1.0
    cells = []
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            shade = float(value) / peak
            cells.append(Cell(
                x=left + j * side, y=top + i * side, size=side, shade=round(0.06 + 0.94 * shade, 3),
                text=fmt(float(value)), dark=shade > 0.55,
            ))
    return Heatmap(
        width=size, height=int(top + n * side + 40), cells=cells,
        row_labels=[Tick(top + (i + 0.5) * side, short(label)) for i, label in enumerate(labels)],
        col_labels=[Tick(left + (j + 0.5) * side, short(label)) for j, label in enumerate(labels)],
        origin=(left, top), side=side,
    )


def drift_bars(
    rows: Sequence[tuple[str, float, str]], *, width: int = WIDTH, stable_below: float = 0.1,
    moderate_below: float = 0.25,
) -> HorizontalBars | None:
    """Drift per feature: one horizontal bar of PSI each, coloured by level, with the two
    level thresholds drawn as lines."""
    if not rows:
        return None
    row_height = 22
    left = 8 + 6.5 * min(max(len(name) for name, _, _ in rows), 24) + 8
    height = int(MARGIN_TOP + row_height * len(rows) + 34)
    frame = Frame(left, MARGIN_TOP, width - 40, MARGIN_TOP + row_height * len(rows))
    top_value = max([psi for _, psi, _ in rows] + [moderate_below * 1.2])
    ticks = nice_ticks(0.0, top_value, count=5)
    high = ticks[-1]

    def x_of(value: float) -> float:
        return frame.left + max(value, 0.0) / high * frame.width

    level_class = {"stable": "ok", "moderate": "warn", "significant": "bad"}
    bars = [
        Bar(x=frame.left, y=frame.top + i * row_height + 3, w=max(x_of(psi) - frame.left, 1.0),
            h=row_height - 6, label=short(name, 24), value=fmt(psi), cls=level_class.get(level, ""))
        for i, (name, psi, level) in enumerate(rows)
    ]
    return HorizontalBars(
        width=width, height=height, frame=frame, bars=bars,
        x_ticks=[Tick(x_of(t), fmt(t)) for t in ticks],
        thresholds=[(x_of(stable_below), "warn"), (x_of(moderate_below), "")],
    )
