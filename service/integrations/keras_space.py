"""KerasTuner hyperparameters as a tunesmith search space, and server values back.

    Int(min, max), linear or log (no step)      int [min, max], log scale if log
    Float(min, max), linear or log (no step)    float [min, max], log scale if log
    Int/Float with a step                       a grid (`grid.Grid`): linear min + i * step,
                                                log min * step**i
    Choice(values)                              categorical over the values
    Boolean                                     categorical [False, True]
    Fixed(value), or min == max                 fixed
    sampling="reverse_log"                      the linear scale (tunesmith has no reversed
                                                log scale: the GP models the same values,
                                                only its prior over the axis differs); with
                                                a step: ValueError

Conditional scopes are flattened: every hyperparameter, active or not, is a parameter of the
study, so each server trial has a value for all of them (the server's model sees one vector
per trial); KerasTuner gets only the values active for that trial. Hyperparameters that
share a name (under different conditions) must map to the same parameter, else ValueError.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from keras_tuner import HyperParameters
from keras_tuner.engine.hyperparameters import Boolean, Choice, Fixed, Float, HyperParameter, Int

from service.integrations.grid import Grid
from service.params import CategoricalParam, FixedParam, FloatParam, IntParam, Param
from service.space import SearchSpace

ToHost = Callable[[Any], Any]


def _numeric(hp: Int | Float) -> tuple[Param, ToHost]:
    integer = isinstance(hp, Int)
    low, high = hp.min_value, hp.max_value
    log = hp.sampling == "log"
    if low == high:
        return FixedParam(value=low), lambda v: v
    if hp.step is not None and hp.sampling == "reverse_log":
        raise ValueError(f"hyperparameter {hp.name!r}: reverse_log with a step is not supported")
    if hp.step is not None and not (integer and hp.step == 1 and not log):
        grid = Grid.spanning(low, high, hp.step, multiplicative=log, integer=integer)
        return grid.param(), grid.to_host
    if integer:
        return IntParam(low=low, high=high, log=log), int
    return FloatParam(low=low, high=high, log=log), float


def _param(hp: HyperParameter) -> tuple[Param, ToHost]:
    if isinstance(hp, Int | Float):
        return _numeric(hp)
    if isinstance(hp, Boolean):
        return CategoricalParam(choices=[False, True]), bool
    if isinstance(hp, Choice):
        return CategoricalParam(choices=list(hp.values)), lambda v: v
    if isinstance(hp, Fixed):
        return FixedParam(value=hp.value), lambda v: v
    raise ValueError(f"hyperparameter {hp.name!r}: unsupported type {type(hp).__name__}")


class KerasSpace:
    """The study space of a KerasTuner search space (see the module's mapping).

    Raises ValueError for an unsupported hyperparameter or two conflicting ones of one name,
    and InvalidSearchSpace when the result is not a valid tunesmith space.
    """

    def __init__(self, hyperparameters: HyperParameters) -> None:
        params: dict[str, Param] = {}
        self._to_host: dict[str, ToHost] = {}
        for hp in hyperparameters.space:
            param, to_host = _param(hp)
            if hp.name in params and params[hp.name] != param:
                raise ValueError(
                    f"hyperparameter {hp.name!r} is declared twice, as {params[hp.name]} and "
                    f"{param}: tunesmith needs one definition per name"
                )
            params[hp.name] = param
            self._to_host[hp.name] = to_host
        self.space = SearchSpace(params)

    def host_values(
        self, params: Mapping[str, Any], hyperparameters: HyperParameters
    ) -> dict[str, Any]:
        """KerasTuner's values for a server configuration, over `hyperparameters` (the
        oracle's current space): the active ones only; an active hyperparameter that the
        study does not have (declared after the study was made) keeps its default."""
        chosen = HyperParameters()
        for hp in hyperparameters.space:
            chosen.merge([hp])
            if chosen.is_active(hp) and hp.name in params and hp.name in self._to_host:
                chosen.values[hp.name] = self._to_host[hp.name](params[hp.name])
        return dict(chosen.values)
