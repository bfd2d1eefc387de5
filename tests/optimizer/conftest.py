"""Optimizer tests run with one BLAS thread: on a loaded 2-core machine OpenBLAS's spinning
threads made each L-BFGS-B step of a GP fit about ten times slower (measured: 20 GP
suggestions took 10.6 s with the default threads, 0.9 s with one, at load average 14)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread() -> Iterator[None]:
    with threadpool_limits(limits=1):
        yield
