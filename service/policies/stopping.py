"""Study-level stopping: end a study early when more trials are not worth their cost.

Three optional rules (the `stopping` field of a study specification); whichever fires first
ends the study DONE with its reason recorded:

- target: the best value reached `target` (in the study's direction).
- patience: the best value has not improved for `patience` finished trials.
- ei_threshold: the optimizer's own judgement. At each GP suggestion the expected
  improvement at the chosen point, divided by the gap between the median and the best
  observed value (the scale of improvements seen so far; the full range would let one
  outlier make every improvement look negligible), is compared to `ei_threshold`; when it
  stays below for `ei_patience` suggestions in a row, no remaining configuration is expected
  to be worth a trial.

No rule fires before `min_trials` trials have finished.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from scipy.stats import norm

from service.domain import Direction, StopKind, StopReason
from service.optimizer.base import SuggestionInfo
from service.specs import StoppingSpec


def history_stop_reason(
    spec: StoppingSpec, direction: Direction, values: Sequence[float | None]
) -> StopReason | None:
    """Checks target and patience on finished trials' values, in finishing order (None for
    failed trials)."""
    if len(values) < spec.min_trials:
        return None
    best: float | None = None
    since_improvement = 0
    for value in values:
        if value is not None and math.isfinite(value) and (
            best is None or direction.better(value, best)
        ):
            best = value
            since_improvement = 0
        else:
            since_improvement += 1
    if spec.target is not None and best is not None and not direction.better(spec.target, best):
        return StopReason(StopKind.TARGET, f"target {spec.target:g} reached (best {best:g})")
    if spec.patience is not None and since_improvement >= spec.patience:
        return StopReason(
            StopKind.PATIENCE,
            f"no improvement in the last {since_improvement} trials (patience {spec.patience})",
        )
    return None


def relative_expected_improvement(
    info: SuggestionInfo, direction: Direction, values: Sequence[float]
) -> float | None:
    """EI at a suggestion (from its predicted mean and std) over the median-to-best gap."""
    finite = [v for v in values if math.isfinite(v)]
    if info.mean is None or info.std is None or len(finite) < 2:
        return None
    best = direction.best(finite)
    assert best is not None
    span = abs(statistics.median(finite) - best)
    if span <= 0:
        return None
    gain = direction.sign * (info.mean - best)
    if info.std <= 0:
        return max(gain, 0.0) / span
    z = gain / info.std
    return float((gain * norm.cdf(z) + info.std * norm.pdf(z)) / span)


def update_ei_streak(
    spec: StoppingSpec, streak: int, relative_ei: float | None, n_finished: int
) -> tuple[int, StopReason | None]:
    """Returns the new streak of low-EI suggestions and, when it is long enough, the reason."""
    if spec.ei_threshold is None or relative_ei is None:
        return streak, None
    streak = streak + 1 if relative_ei < spec.ei_threshold else 0
    if streak >= spec.ei_patience and n_finished >= spec.min_trials:
        return streak, StopReason(
            StopKind.EI_THRESHOLD,
            f"expected improvement below {spec.ei_threshold:g} of the observed range "
            f"for {streak} suggestions",
        )
    return streak, None
