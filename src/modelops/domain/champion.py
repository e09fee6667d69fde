"""Champion comparison: a challenger's metrics against the model's production version's."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from modelops.domain.errors import InvalidInput

# Error metrics: smaller is better. Everything else compared here is a score: larger is better.
LOWER_IS_BETTER = frozenset({"mae", "mse", "rmse", "log_loss", "mape", "max_error"})
# Counts and tables are reported, not compared.
NOT_COMPARED = frozenset({"n_samples", "confusion_matrix", "labels", "positive_label"})
# When no primary metric is named, the first of these both sides have decides the winner.
PRIMARY_PREFERENCE = ("f1", "accuracy", "roc_auc", "rmse", "mae", "r2")


@dataclass(frozen=True)
class MetricComparison:
    metric: str
    challenger: float | None
    champion: float | None
    delta: float | None  # challenger - champion
    lower_is_better: bool
    better: str | None  # "challenger" | "champion" | "tie" | None when one side lacks it


@dataclass(frozen=True)
class ChampionComparison:
    metrics: list[MetricComparison]
    primary: str | None
    winner: str | None  # "challenger" | "champion" | "tie" | None (nothing comparable)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def compare_to_champion(
    challenger: Mapping[str, Any], champion: Mapping[str, Any] | None, *,
    primary: str | None = None, tolerance: float = 1e-12,
) -> ChampionComparison:
    """Compare a challenger's metrics with the champion's, metric by metric.

    ``delta`` is challenger minus champion; ``better`` reads the delta the right way round
    (lower is better for MAE, MSE, RMSE, log loss). Without a champion the challenger wins.
    The winner is the better side on ``primary`` (or the first of PRIMARY_PREFERENCE both have).
    """
    champion = champion or {}
    rows: list[MetricComparison] = []
    for metric in sorted(set(challenger) | set(champion)):
        if metric in NOT_COMPARED:
            continue
        ours, theirs = _number(challenger.get(metric)), _number(champion.get(metric))
        if ours is None and theirs is None:
            continue
        lower = metric in LOWER_IS_BETTER
        delta = ours - theirs if ours is not None and theirs is not None else None
        if delta is None:
            better = None
        elif abs(delta) <= tolerance:
            better = "tie"
        else:
            better = "challenger" if (delta < 0) == lower else "champion"
        rows.append(MetricComparison(metric, ours, theirs, delta, lower, better))
    by_name = {row.metric: row for row in rows}
    if primary is not None and primary not in by_name:
        raise InvalidInput(f"metric {primary!r} is not reported by either model")
    chosen = primary or next(
        (m for m in PRIMARY_PREFERENCE if m in by_name and by_name[m].better is not None), None
    )
    if not champion:
        winner: str | None = "challenger"
    elif chosen is None:
        winner = None
    else:
        winner = by_name[chosen].better
    return ChampionComparison(metrics=rows, primary=chosen, winner=winner)
