"""Stepped and conditional parameters in the search space: validation (each refusal names its
field), the grid encoding, and inactive parameters left out and imputed."""

from __future__ import annotations

import numpy as np
import pytest

from service.errors import InvalidConfiguration, InvalidSearchSpace
from service.space import INACTIVE, SearchSpace

SPEC = {
    "arch": {"type": "categorical", "choices": ["dense", "conv"]},
    "hidden": {
        "type": "int",
        "low": 32,
        "high": 512,
        "log": True,
        "condition": {"arch": ["dense"]},
    },
    "filters": {"type": "int", "low": 8, "high": 256, "step": 8, "condition": {"arch": ["conv"]}},
    "dropout": {"type": "float", "low": -1, "high": 1, "step": 0.05},
    "layers": {"type": "int", "low": 1, "high": 3},
    "gamma": {"type": "float", "low": 0.1, "high": 1.0, "condition": {"layers": [2, 3]}},
    "kernel": {"type": "categorical", "choices": [3, 5], "condition": {"filters": [8, 16]}},
}


@pytest.fixture
def space() -> SearchSpace:
    return SearchSpace.from_spec(SPEC)


def on_grid(space: SearchSpace, config: dict) -> bool:
    for name, v in config.items():
        p = space.params[name]
        step = getattr(p, "step", None)
        if step:
            k = (v - p.low) / step  # type: ignore[union-attr]
            if abs(k - round(k)) > 1e-9:
                return False
    return True


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"a": {"type": "float", "low": 0, "high": 1, "step": 0.3}}, "space.a.step"),
        ({"a": {"type": "float", "low": 0, "high": 1, "step": 0}}, "space.a.step"),
        ({"a": {"type": "float", "low": 0, "high": 1, "step": -0.1}}, "space.a.step"),
        ({"a": {"type": "int", "low": 8, "high": 250, "step": 8}}, "space.a.step"),
        ({"a": {"type": "float", "low": 1, "high": 10, "log": True, "step": 1}}, "space.a.step"),
        ({"a": {"type": "int", "low": 1, "high": 9, "log": True, "step": 2}}, "space.a.step"),
        ({"a": {"type": "categorical", "choices": [1], "step": 1}}, "space.a.step"),
        (
            {"a": {"type": "float", "low": 0, "high": 1, "condition": {"nope": [1]}}},
            "space.a.condition.nope",
        ),
        (
            {
                "p": {"type": "float", "low": 0, "high": 1},
                "a": {"type": "float", "low": 0, "high": 1, "condition": {"p": [0.5]}},
            },
            "space.a.condition.p",
        ),
        (
            {
                "p": {"type": "categorical", "choices": ["x", "y"]},
                "a": {"type": "float", "low": 0, "high": 1, "condition": {"p": ["z"]}},
            },
            "space.a.condition.p",
        ),
        (
            {
                "p": {"type": "int", "low": 0, "high": 8, "step": 2},
                "a": {"type": "float", "low": 0, "high": 1, "condition": {"p": [3]}},
            },
            "space.a.condition.p",
        ),
        (
            {
                "p": {"type": "categorical", "choices": ["x"]},
                "a": {"type": "float", "low": 0, "high": 1, "condition": {"p": []}},
            },
            "space.a.condition",
        ),
        (
            {
                "p": {"type": "categorical", "choices": [1, 2], "condition": {"a": [1]}},
                "a": {"type": "categorical", "choices": [1, 2], "condition": {"p": [1]}},
            },
            "space.p.condition",
        ),
        (
            {"a": {"type": "categorical", "choices": [1, 2], "condition": {"a": [1]}}},
            "space.a.condition",
        ),
    ],
)
def test_bad_steps_and_conditions_name_the_field(spec, field):
    with pytest.raises(InvalidSearchSpace) as info:
        SearchSpace.from_spec(spec)
    assert info.value.field == field
    assert field in str(info.value)


def test_spec_round_trips_and_keeps_only_given_fields(space):
    assert SearchSpace.from_spec(space.to_spec()) == space
    spec = space.to_spec()
    assert "step" not in spec["layers"] and "condition" not in spec["layers"]
    assert spec["filters"]["step"] == 8 and spec["hidden"]["condition"] == {"arch": ["dense"]}


def test_every_decoded_point_is_on_the_grid_and_omits_inactive_parameters(space):
    X = np.random.default_rng(0).uniform(-0.2, 1.2, size=(500, space.dim))
    seen_values = set()
    for x in X:
        config = space.decode(x)
        assert on_grid(space, config)
        assert ("hidden" in config) == (config["arch"] == "dense")
        assert ("filters" in config) == (config["arch"] == "conv")
        assert ("gamma" in config) == (config["layers"] > 1)
        assert ("kernel" in config) == (config.get("filters") in (8, 16))
        assert space.validate(config) == config
        seen_values.add(config["dropout"])
    assert seen_values <= {round(-1 + 0.05 * k, 10) for k in range(41)}
    assert -1.0 in seen_values and 1.0 in seen_values


def test_snapped_encoding_is_the_encoding_of_the_decoded_configuration(space):
    X = np.random.default_rng(1).uniform(-0.2, 1.2, size=(300, space.dim))
    snapped = space.snap_many(X)
    np.testing.assert_allclose(snapped, space.encode_many([space.decode(x) for x in X]))
    np.testing.assert_allclose(space.snap_many(snapped), snapped)


def test_grid_indices_own_equal_shares_of_their_column():
    space = SearchSpace.from_spec({"f": {"type": "int", "low": 8, "high": 256, "step": 8}})
    values = [space.decode([u])["f"] for u in np.linspace(0, 1, 32 * 200 + 1)]
    counts = np.unique(values, return_counts=True)
    assert list(counts[0]) == list(range(8, 257, 8))
    assert counts[1].min() >= 199


def test_inactive_parameters_are_imputed_the_same_everywhere(space):
    dense = {"arch": "dense", "hidden": 64, "dropout": 0.1, "layers": 1}
    x = space.encode(dense)
    col = next(c for c in space.columns if c.name == "filters")
    assert x[col.start] == INACTIVE
    kernel = next(c for c in space.columns if c.name == "kernel")
    assert not x[kernel.start : kernel.stop].any()
    # A value sent for an inactive parameter changes nothing: it is not part of the trial.
    noisy = {**dense, "filters": 64, "gamma": 0.5}
    assert space.validate(noisy) == dense
    assert space.key(noisy) == space.key(dense)
    np.testing.assert_array_equal(space.encode(space.validate(noisy)), x)


def test_validation_refuses_off_grid_values_and_missing_active_ones(space):
    base = {"arch": "conv", "filters": 24, "dropout": 0.15, "layers": 2, "gamma": 0.3}
    assert space.validate(base)["dropout"] == 0.15
    assert space.validate({**base, "dropout": 0.15000000001})["dropout"] == 0.15
    for bad, name in [
        ({"filters": 20}, "filters"),
        ({"dropout": 0.17}, "dropout"),
        ({"gamma": None}, "gamma"),
    ]:
        with pytest.raises(InvalidConfiguration) as info:
            space.validate({**base, **bad})
        assert info.value.field == f"params.{name}"
    missing = dict(base)
    del missing["gamma"]
    with pytest.raises(InvalidConfiguration, match=r"params\.gamma: missing"):
        space.validate(missing)
    with pytest.raises(InvalidConfiguration, match=r"params\.kernel: missing"):
        space.validate({**base, "filters": 16})


def test_enumeration_counts_each_active_configuration_once():
    space = SearchSpace.from_spec(
        {
            "opt": {"type": "categorical", "choices": ["adam", "sgd"]},
            "momentum": {
                "type": "float",
                "low": 0,
                "high": 0.9,
                "step": 0.3,
                "condition": {"opt": ["sgd"]},
            },
            "units": {"type": "int", "low": 8, "high": 32, "step": 8},
        }
    )
    configs = space.enumerate_configs(100)
    assert configs is not None
    assert space.cardinality() == len(configs) == (1 + 4) * 4
    assert len({space.key(c) for c in configs}) == len(configs)
    assert all(space.validate(c) == c for c in configs)


def test_neighbors_move_one_grid_step_or_one_category(space):
    config = {"arch": "conv", "filters": 16, "dropout": 1.0, "layers": 1, "kernel": 3}
    Y, origin = space.neighbors(space.encode_many([config]))
    moved = [space.decode(y) for y in Y]
    assert set(origin) == {0}
    assert {m.get("filters") for m in moved} >= {8, 24}
    assert {m["dropout"] for m in moved} == {0.95, 1.0}
    assert any(m["arch"] == "dense" and "hidden" in m for m in moved)
    assert all(on_grid(space, m) and space.validate(m) == m for m in moved)
