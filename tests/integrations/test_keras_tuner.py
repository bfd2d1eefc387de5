"""TunesmithOracle: KerasTuner's tuner runs on trials from a real tunesmith server."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras_tuner = pytest.importorskip("keras_tuner")

import keras  # noqa: E402

from service.integrations.keras_space import KerasSpace  # noqa: E402
from service.integrations.keras_tuner import TunesmithOracle  # noqa: E402
from tests.support import ADMIN_TOKEN, ServerProcess  # noqa: E402

pytestmark = [
    pytest.mark.tf,
    # KerasTuner's own use of threading.currentThread()
    pytest.mark.filterwarnings("ignore::DeprecationWarning:keras_tuner.src.engine.oracle"),
]


def test_space_maps_every_hyperparameter_type() -> None:
    hp = keras_tuner.HyperParameters()
    hp.Int("layers", 1, 3)
    hp.Int("width", 8, 1024, sampling="log")
    hp.Int("units", 8, 32, step=8)
    hp.Int("batch", 16, 256, step=2, sampling="log")
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Float("dropout", 0.0, 0.5, step=0.1)
    hp.Float("fine", 0.0, 1.0, step=0.001)
    hp.Choice("opt", ["adam", "sgd"])
    hp.Boolean("bn")
    hp.Fixed("epochs", 3)
    with hp.conditional_scope("opt", ["sgd"]):
        hp.Float("momentum", 0.0, 0.9)
    space = KerasSpace(hp).space.to_spec()
    assert space["layers"] == {"type": "int", "low": 1, "high": 3, "log": False}
    assert space["width"] == {"type": "int", "low": 8, "high": 1024, "log": True}
    assert space["units"] == {"type": "categorical", "choices": [8, 16, 24, 32]}
    assert space["batch"] == {"type": "categorical", "choices": [16, 32, 64, 128, 256]}
    assert space["lr"] == {"type": "float", "low": 1e-4, "high": 0.1, "log": True}
    assert space["dropout"]["choices"] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert space["fine"] == {"type": "float", "low": 0.0, "high": 1.0, "log": False}
    assert space["opt"]["choices"] == ["adam", "sgd"] and space["bn"]["choices"] == [False, True]
    assert space["epochs"] == {"type": "fixed", "value": 3}
    assert space["momentum"] == {"type": "float", "low": 0.0, "high": 0.9, "log": False}

    values = KerasSpace(hp).host_values(
        {
            **{k: v.get("low", v.get("value")) for k, v in space.items()},
            "units": 24,
            "batch": 64,
            "dropout": 0.3,
            "fine": 0.12345,
            "opt": "adam",
            "bn": True,
        },
        hp,
    )
    assert "momentum" not in values  # inactive under opt=adam
    assert values["fine"] == 0.123  # a 1,001-value grid is numeric; values land on the grid
    assert (values["units"], values["batch"], values["dropout"]) == (24, 64, 0.3)


def test_conflicting_definitions_of_one_name_are_refused() -> None:
    hp = keras_tuner.HyperParameters()
    hp.Choice("model", ["a", "b"])
    with hp.conditional_scope("model", ["a"]):
        hp.Int("units", 8, 16)
    with hp.conditional_scope("model", ["b"]):
        hp.Int("units", 32, 64)
    with pytest.raises(ValueError, match="declared twice"):
        KerasSpace(hp)


def _build(hp: Any) -> keras.Model:
    model = keras.Sequential([keras.Input((64,))])
    kind = hp.Choice("kind", ["hidden", "linear"])
    with hp.conditional_scope("kind", ["hidden"]):
        if kind == "hidden":
            model.add(keras.layers.Dense(hp.Int("units", 8, 32, step=8), activation="relu"))
    model.add(keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.1)))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-5, 1e-1, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


@pytest.mark.slow
def test_a_keras_model_is_tuned_with_trials_from_the_server(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    from sklearn.datasets import load_digits

    keras.utils.set_random_seed(0)
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    server = start_server()
    oracle = TunesmithOracle(
        objective="val_accuracy",
        max_trials=6,
        server=server.url,
        token=ADMIN_TOKEN,
        n_initial=3,
        seed=0,
        pruning={"rule": "median", "min_trials": 1},
    )
    tuner = keras_tuner.Tuner(
        oracle=oracle, hypermodel=_build, directory=tmp_path, project_name="digits"
    )
    tuner.search(
        x[:1500],
        y[:1500],
        validation_data=(x[1500:], y[1500:]),
        epochs=3,
        batch_size=128,
        verbose=0,
        callbacks=[oracle.pruning_callback()],
    )

    client = server.client()
    study = client.find_study("digits")
    assert study is not None
    assert (study.metric, study.direction) == ("val_accuracy", "maximize")
    assert study.space["units"]["choices"] == [8, 16, 24, 32]
    assert study.space["lr"] == {"type": "float", "low": 1e-5, "high": 0.1, "log": True}
    served = client.trials(study.id)
    assert len(served) == 6 and {t.state for t in served} <= {"complete", "pruned"}
    assert any(t.state == "pruned" for t in served)
    kt_trials = list(tuner.oracle.trials.values())
    assert len(kt_trials) == 6
    for kt in kt_trials:
        values = kt.hyperparameters.values
        (match,) = [t for t in served if {k: t.params[k] for k in values} == values]
        assert ("units" in values) == (values["kind"] == "hidden")
        assert values["dropout"] in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
        if match.state == "complete":
            assert match.value == pytest.approx(kt.score)
        detail = client.trial(match.id)
        assert [v.step for v in detail.values] == list(range(1, len(detail.values) + 1))
        assert len(detail.values) == (3 if match.state == "complete" else match.step)


class _Quadratic(keras_tuner.Tuner):
    """KerasTuner's black-box form: no model, `run_trial` returns the objective."""

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> float:
        x = trial.hyperparameters.Float("x", -2.0, 2.0)
        return float((x - 0.5) ** 2)


@pytest.mark.slow
def test_two_tuners_share_one_study(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = start_server()

    def tune(name: str) -> _Quadratic:
        space = keras_tuner.HyperParameters()
        space.Float("x", -2.0, 2.0)
        oracle = TunesmithOracle(
            max_trials=8,
            study_name="shared",
            server=server.url,
            token=ADMIN_TOKEN,
            hyperparameters=space,
        )
        tuner = _Quadratic(oracle=oracle, directory=tmp_path / name, project_name="q")
        tuner.search(verbose=0)
        return tuner

    tuners: list[_Quadratic] = []
    threads = [threading.Thread(target=lambda n=n: tuners.append(tune(n))) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    client = server.client()
    study = client.find_study("shared")
    assert study is not None and study.state == "done"
    served = client.trials(study.id)
    assert len(served) == 8 and all(t.state == "complete" for t in served)
    ran = [t for tuner in tuners for t in tuner.oracle.trials.values()]
    assert len(tuners) == 2 and all(tuner.oracle.trials for tuner in tuners)
    assert sorted(t.score for t in ran) == sorted(t.value for t in served)
