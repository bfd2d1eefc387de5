"""The feature classifier behind the GAN's Frechet distance, trained once per dataset.

The classifier (Flatten -> Dense 256 -> Dense 64 "features" -> Dense classes) is trained
with seed 0 on every image of the dataset and saved as
`<cache_dir>/gan-features-<digest>.keras`, the digest naming the dataset's content hash
(the exact images and labels) and the classifier recipe; every Keras backend reads the
file. Concurrent workers may both train it; the file is written to a temporary name and
renamed, so readers never see a partial file. It resets Keras's global seed: set
the trial's seed again afterwards.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import keras

from objectives.data import Images

log = logging.getLogger(__name__)

RECIPE = "dense256-64-adam1e-3-bs128-v1"
FEATURES = "features"


def cache_dir(configured: str | None) -> Path:
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get("TUNESMITH_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "tunesmith"


def feature_extractor(data: Images, directory: Path, *, epochs: int) -> keras.Model:
    """A model mapping images (n, h, w, c) in [0, 1] to (n, 64) features."""
    digest = hashlib.sha256(f"{RECIPE}:{epochs}:{data.record.sha256}".encode()).hexdigest()
    path = directory / f"gan-features-{digest[:20]}.keras"
    if path.exists():
        model = keras.saving.load_model(path, compile=False)
    else:
        model = _train(data, epochs=epochs)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.keras")
        model.save(tmp)
        os.replace(tmp, path)
        log.info("trained the GAN feature classifier on %s (sha256 %s); cached at %s",
                 data.record.name, data.record.sha256[:12], path)
    return keras.Model(model.inputs, model.get_layer(FEATURES).output)


def _train(data: Images, *, epochs: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(data.x.shape[1:]),
            keras.layers.Flatten(),
            keras.layers.Dense(256, activation="relu", dtype="float32"),
            keras.layers.Dense(64, activation="relu", name=FEATURES, dtype="float32"),
            keras.layers.Dense(data.num_classes, activation="softmax", dtype="float32"),
        ],
        name="gan_feature_classifier",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(data.x, data.y, batch_size=128, epochs=epochs, verbose=0)
    log.info("feature classifier training accuracy %.3f", history.history["accuracy"][-1])
    return model
