"""The demo plugin's trainer: reports once per epoch and honours pruning."""

import math
from typing import Any

from objectives import TrialContext, TrialPruned

from . import DemoArgs


def train(params: dict[str, Any], args: DemoArgs, ctx: TrialContext) -> float:
    target = (math.log10(params["width"]) - 0.5) ** 2 + (params["depth"] - 3) ** 2 / 10
    value = math.inf
    for epoch in range(1, args.epochs + 1):
        value = target + 1.0 / epoch
        if ctx.report(epoch, value):
            raise TrialPruned()
    return value
