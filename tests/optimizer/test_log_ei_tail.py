"""log h(z) = log(phi(z) + z Phi(z)), the core of log EI, far into its left tail: past
z = -1/sqrt(eps) (= -2**26) it is the asymptote -z^2/2 - log(sqrt(2 pi)) - 2 log|z|, and it
joins the branch before it without a jump."""

from __future__ import annotations

import math

import numpy as np

from service.optimizer.acquisition import log_h

EDGE = -(2.0**26)  # -1/sqrt(machine epsilon)


def test_the_far_tail_is_the_asymptote() -> None:
    # At z = -2**26, -z^2/2 = -2**51 is exact and floats there are 0.5 apart: the rest of
    # log h (about -37) is resolved to 0.25. Further out the spacing hides it.
    z = EDGE
    rest = float(log_h(np.array([z]))[0]) + 0.5 * z * z
    expected = -0.5 * math.log(2 * math.pi) - 2.0 * math.log(abs(z))
    assert abs(rest - expected) < 0.5, (rest, expected)


def test_the_tail_branches_join_without_a_jump() -> None:
    z = np.array([EDGE * (1 - 1e-12), EDGE, EDGE * (1 + 1e-12)])
    rest = log_h(z) + 0.5 * z * z
    assert np.ptp(rest) < 1.0, rest
