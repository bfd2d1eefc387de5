"""The stopping rules' numbers, computed by hand: the relative expected improvement of a
suggestion (EI over the median-to-best gap) in both directions, with and without
uncertainty, and patience counted from the first trial when no trial has a value yet."""

from __future__ import annotations

import math

import pytest

from service.domain import Direction, StopKind
from service.optimizer import SuggestionInfo
from service.policies.stopping import history_stop_reason, relative_expected_improvement
from service.specs import StoppingSpec

MIN, MAX = Direction.MINIMIZE, Direction.MAXIMIZE


def _phi(z: float) -> float:
    return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _cdf(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def _ei(gain: float, std: float) -> float:
    return gain * _cdf(gain / std) + std * _phi(gain / std)


@pytest.mark.parametrize(
    "direction, values, mean, std, expected",
    [
        # minimize: best 2, median 4, gap 2; the suggestion is predicted at 2.5 +- 0.5
        (MIN, [2.0, 4.0, 10.0], 2.5, 0.5, _ei(-0.5, 0.5) / 2),
        (MIN, [2.0, 4.0, 10.0], 1.0, 3.0, _ei(1.0, 3.0) / 2),
        # maximize: best 10, median 5, gap 5
        (MAX, [0.0, 5.0, 10.0], 11.0, 2.0, _ei(1.0, 2.0) / 5),
        # no uncertainty: the improvement itself, or nothing
        (MIN, [2.0, 4.0, 10.0], 1.0, 0.0, 0.5),
        (MIN, [2.0, 4.0, 10.0], 3.0, 0.0, 0.0),
        (MAX, [0.0, 5.0, 10.0], 12.0, 0.0, 0.4),
    ],
)
def test_relative_expected_improvement_by_hand(
    direction: Direction, values: list[float], mean: float, std: float, expected: float
) -> None:
    info = SuggestionInfo("gp", mean=mean, std=std)
    got = relative_expected_improvement(info, direction, values)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_no_gap_between_median_and_best_gives_no_relative_ei() -> None:
    info = SuggestionInfo("gp", mean=0.5, std=1.0)
    assert relative_expected_improvement(info, MIN, [1.0, 1.0, 3.0]) is None
    assert relative_expected_improvement(info, MIN, [1.0, math.nan]) is None


def test_patience_counts_trials_without_any_value_from_the_first() -> None:
    spec = StoppingSpec(patience=2, min_trials=1)
    assert history_stop_reason(spec, MIN, [None]) is None
    reason = history_stop_reason(spec, MIN, [None, None])
    assert reason is not None and reason.kind is StopKind.PATIENCE


def test_the_target_rule_names_its_kind() -> None:
    reason = history_stop_reason(StoppingSpec(target=1.0, min_trials=1), MAX, [0.5, 1.5])
    assert reason is not None and reason.kind is StopKind.TARGET
    assert reason.message == "target 1 reached (best 1.5)"
