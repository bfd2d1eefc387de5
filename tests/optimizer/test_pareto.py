"""Pareto fronts and hypervolume against hand-computed cases and a Monte Carlo estimate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.domain import Direction
from service.optimizer.pareto import hypervolume, nondominated, to_minimized


def test_dominated_points_leave_the_front() -> None:
    Y = [[1.0, 4.0], [2.0, 2.0], [3.0, 3.0], [4.0, 1.0], [2.0, 5.0]]
    assert nondominated(Y).tolist() == [True, True, False, True, False]


def test_duplicates_both_stay_on_the_front() -> None:
    Y = [[1.0, 2.0], [1.0, 2.0], [2.0, 2.0]]
    assert nondominated(Y).tolist() == [True, True, False]
    assert hypervolume(Y, [3.0, 3.0]) == pytest.approx(2.0)


def test_one_point() -> None:
    assert nondominated([[0.5, 0.5]]).tolist() == [True]
    assert hypervolume([[0.5, 0.5]], [1.0, 1.0]) == pytest.approx(0.25)
    assert hypervolume([[0.5, 0.5, 0.5]], [1.0, 1.0, 1.0]) == pytest.approx(0.125)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        nondominated([[1.0, bad]])
    with pytest.raises(ValueError, match="finite"):
        hypervolume([[1.0, bad]], [2.0, 2.0])


def test_two_objective_hypervolume_by_hand() -> None:
    # Staircase: (1,3), (2,2), (3,1) against (4,4): 3*1 + 2*1 + 1*1 = 6.
    Y = [[3.0, 1.0], [1.0, 3.0], [2.0, 2.0], [3.5, 3.5]]
    assert hypervolume(Y, [4.0, 4.0]) == pytest.approx(6.0)


def test_points_outside_the_reference_box_add_nothing() -> None:
    assert hypervolume([[5.0, 0.0]], [4.0, 4.0]) == 0.0
    assert hypervolume([[4.0, 1.0]], [4.0, 4.0]) == 0.0


def test_three_objective_hypervolume_matches_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    Y = rng.random((12, 3))
    ref = np.ones(3)
    exact = hypervolume(Y, ref)
    U = rng.random((200_000, 3))
    dominated = np.zeros(len(U), dtype=bool)
    for y in Y:
        dominated |= np.all(y <= U, axis=1)
    assert exact == pytest.approx(dominated.mean(), abs=0.01)


def test_maximized_objectives_are_flipped() -> None:
    Y = to_minimized([[1.0, 2.0]], [Direction.MINIMIZE, Direction.MAXIMIZE])
    assert Y.tolist() == [[1.0, -2.0]]
