"""SearchSpace: parsing errors, validation, and the unit-cube encoder for every type."""

from __future__ import annotations

import numpy as np
import pytest

from service.errors import InvalidConfiguration, InvalidSearchSpace
from service.space import SearchSpace

SPEC = {
    "lr": {"type": "float", "low": 1e-5, "high": 1.0, "log": True},
    "x": {"type": "float", "low": -2.0, "high": 3.0},
    "layers": {"type": "int", "low": 1, "high": 8},
    "batch": {"type": "int", "low": 16, "high": 512, "log": True},
    "opt": {"type": "categorical", "choices": ["adam", "sgd", True, 1, 1.5]},
    "seed": {"type": "fixed", "value": "s"},
}


@pytest.fixture
def space() -> SearchSpace:
    return SearchSpace.from_spec(SPEC)


def test_spec_round_trips(space):
    assert SearchSpace.from_spec(space.to_spec()) == space
    assert space.dim == 1 + 1 + 1 + 1 + 5
    assert space.names == list(SPEC)


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"a": {"type": "float", "low": 1, "high": 0}}, "space.a"),
        ({"a": {"type": "float", "low": 0, "high": 1, "log": True}}, "space.a"),
        ({"a": {"type": "int", "low": 0, "high": 3, "step": 2}}, "space.a.step"),
        ({"a": {"type": "categorical", "choices": []}}, "space.a.choices"),
        ({"a": {"type": "nope"}}, "space.a"),
    ],
)
def test_invalid_spaces_name_the_field(spec, field):
    with pytest.raises(InvalidSearchSpace) as info:
        SearchSpace.from_spec(spec)
    assert info.value.field == field
    assert field in str(info.value)


@pytest.mark.parametrize(
    "bad, name",
    [
        ({"lr": 2.0}, "lr"),
        ({"layers": 2.5}, "layers"),
        ({"layers": True}, "layers"),
        ({"opt": "rmsprop"}, "opt"),
        ({"seed": "t"}, "seed"),
        ({"extra": 1}, "extra"),
    ],
)
def test_validate_names_the_bad_parameter(space, bad, name):
    config = {**space.sample(np.random.default_rng(0), 1)[0], **bad}
    with pytest.raises(InvalidConfiguration) as info:
        space.validate(config)
    assert info.value.field == f"params.{name}"


def test_encoder_round_trips_every_type(space):
    rng = np.random.default_rng(1)
    for config in space.sample(rng, 200):
        x = space.encode(config)
        assert x.shape == (space.dim,) and np.all((x >= 0) & (x <= 1))
        assert space.decode(x) == config
        assert space.key(space.decode(x)) == space.key(config)
    edges = {"lr": 1e-5, "x": 3.0, "layers": 8, "batch": 16, "opt": True, "seed": "s"}
    assert space.decode(space.encode(edges)) == edges
    assert space.decode(space.encode({**edges, "opt": 1}))["opt"] == 1  # not True


def test_integers_own_equal_shares_of_their_column():
    space = SearchSpace.from_spec({"k": {"type": "int", "low": 0, "high": 3}})
    counts = np.bincount([space.decode([u])["k"] for u in np.linspace(0, 1, 4001)])
    assert counts.min() > 950


def test_snap_many_matches_snap(space):
    X = np.random.default_rng(2).uniform(-0.2, 1.2, size=(100, space.dim))
    np.testing.assert_allclose(space.snap_many(X), np.array([space.snap(x) for x in X]))


def test_validate_coerces_numpy_and_int_valued_floats(space):
    config = space.sample(np.random.default_rng(3), 1)[0]
    config.update(layers=np.int64(4), x=np.float32(0.5), batch=32.0)
    out = space.validate(config)
    assert type(out["layers"]) is int and type(out["batch"]) is int and type(out["x"]) is float


def test_enumerate_configs_and_cardinality():
    space = SearchSpace.from_spec(
        {
            "k": {"type": "int", "low": 1, "high": 3},
            "c": {"type": "categorical", "choices": ["a", "b"]},
            "f": {"type": "fixed", "value": 1},
        }
    )
    configs = space.enumerate_configs(10)
    assert space.cardinality() == 6 and configs is not None
    assert len({space.key(c) for c in configs}) == 6
    assert space.enumerate_configs(5) is None
    assert SearchSpace.from_spec(SPEC).enumerate_configs(10**9) is None
