"""Loading a trainer's dataset: real data first, then (unless required) the bundled fallback.

For a real dataset (mnist, fashion_mnist, camvid), first match wins:
1. `data.path`: a Keras-style `.npz` (x_train, y_train) or a folder of IDX files
   (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]); for CamVid a folder in the
   SegNet layout. A path that does not hold the dataset is an error, never a fallback.
2. The Keras cache ($KERAS_HOME or ~/.keras, then datasets/): mnist.npz, fashion-mnist/,
   camvid/ (see `objectives.data.sources`).
3. A download into the Keras cache (`objectives.data.fetch`): never with TUNESMITH_OFFLINE
   set, and not again in a process where the same download already failed.
4. Otherwise the data is unavailable: with `data.require_real` the load raises
   `DataUnavailable`; without it the trainer gets scikit-learn's digits (digit masks for
   segmentation) recorded as `fallback` with the reason, and a WARNING is logged once per
   dataset and process.
`digits` names the bundled digits themselves (source `bundled`, never a fallback).

Images are resized to `size` x `size`; CamVid frames keep their native resolution (`size`
applies to its digit-mask fallback only). A process keeps the last few datasets it loaded
in memory; one it downloaded is recorded as `cache` when served again.
"""

from __future__ import annotations

import dataclasses
import logging
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Literal

import numpy as np

from objectives.data import camvid
from objectives.data.arrays import Images, freeze, read_arrays, resize
from objectives.data.digits import LOCATION, MASK_CLASSES, digit_masks, digits
from objectives.data.fetch import (
    OFFLINE_ENV,
    ORIGIN_ENV,
    DownloadFailed,
    configured_origin,
    download,
    keras_cache,
    offline,
    resolve,
)
from objectives.data.options import DataOptions
from objectives.data.record import DatasetRecord, DataUnavailable, Source, content_sha256
from objectives.data.sources import (
    CAMVID_ARCHIVE,
    CAMVID_CACHE_SUBDIR,
    CAMVID_DEFAULT_URL,
    CLASSIFICATION,
)

log = logging.getLogger(__name__)

ImageDataset = Literal["mnist", "fashion_mnist", "digits"]
SegmentationDataset = Literal["camvid", "digits"]
CLASSES = 10
MEMO_SIZE = 4
UNREADABLE = (OSError, ValueError, EOFError, zipfile.BadZipFile)

_memo: OrderedDict[Hashable, Images] = OrderedDict()
_failed_downloads: dict[str, str] = {}
_warned: set[str] = set()


class _Missing(Exception):
    """The real dataset is not available here; the message says why."""


def load_images(name: ImageDataset, options: DataOptions, *, size: int) -> Images:
    """`name`'s training images, size x size, labels 0-9 (see the module rules)."""
    if name == "digits":
        _refuse_path(name, options)
        x, y = digits(size)
        return Images(x, y, CLASSES, _record("digits", "bundled", _digits_at(size), x, y))
    return _load(
        ("images", name, options.path, size), name, options,
        real=lambda: _real_images(name, options.path, size),
        fallback=lambda reason: _digits_fallback(name, size, reason),
    )


def load_segmentation(name: SegmentationDataset, options: DataOptions, *, size: int) -> Images:
    """CamVid (11 classes, void 11, native resolution) or digit masks at size x size."""
    if name == "digits":
        _refuse_path(name, options)
        x, masks = digit_masks(size)
        return Images(x, masks, MASK_CLASSES,
                      _record("digits", "bundled", _digits_at(size, masks=True), x, masks))
    return _load(
        ("segmentation", name, options.path), name, options,
        real=lambda: _real_camvid(options.path),
        fallback=lambda reason: _masks_fallback(name, size, reason),
    )


def forget_loaded() -> None:
    """Forgets what this process loaded, failed to download and warned about: the next
    load starts afresh."""
    _memo.clear()
    _failed_downloads.clear()
    _warned.clear()


def _load(
    key: Hashable, name: str, options: DataOptions, *,
    real: Callable[[], Images], fallback: Callable[[str], Images],
) -> Images:
    hit = _memo.get(key)
    if hit is not None:
        _memo.move_to_end(key)
        if hit.record.source == "downloaded":
            hit = dataclasses.replace(hit, record=hit.record.with_source("cache"))
            _memo[key] = hit
        return hit
    try:
        data = real()
    except _Missing as exc:
        if options.require_real:
            raise DataUnavailable(
                f"{name} is required (data.require_real) but unavailable on this worker: "
                f"{exc}. {_how_to_provide(name)}"
            ) from None
        data = fallback(str(exc))
        if name not in _warned:
            _warned.add(name)
            log.warning("%s is unavailable (%s); training on %s instead. Set "
                        "data.require_real to fail such trials.", name, exc, data.record.location)
        return data
    _memo[key] = data
    while len(_memo) > MEMO_SIZE:
        _memo.popitem(last=False)
    return data


def _real_images(name: str, path: str | None, size: int) -> Images:
    if path is not None:
        where = Path(path).expanduser()
        x, y = read_arrays(where)
        return _classification(name, "path", str(where), x, y, size)
    dataset = CLASSIFICATION[name]
    cache = keras_cache()
    target = cache / dataset.read
    try:
        x, y = read_arrays(target)
        return _classification(name, "cache", str(target), x, y, size)
    except UNREADABLE as exc:
        cached = f"{target} is missing" if isinstance(exc, FileNotFoundError) else (
            f"{target} is unreadable ({exc})")
    _may_download(name, cached)
    fetched: list[Path] = []
    urls = []
    try:
        for remote in dataset.files:
            url, checksum = resolve(remote.name, dataset.origin, remote.checksum)
            dest = cache / dataset.cache_subdir / remote.name
            download(url, dest, checksum=checksum)
            fetched.append(dest)
            urls.append(url)
        x, y = read_arrays(target)
    except UNREADABLE as exc:
        for done in fetched:  # what does not read as the dataset does not stay in the cache
            done.unlink(missing_ok=True)
        what = "the download failed" if isinstance(exc, DownloadFailed) else (
            f"the downloaded files do not read as {name}")
        _failed_downloads[name] = f"{cached} and {what}: {exc}"
        raise _Missing(_failed_downloads[name]) from None
    return _classification(name, "downloaded", f"{urls[0]} -> {target}", x, y, size)


def _real_camvid(path: str | None) -> Images:
    if path is not None:
        where = Path(path).expanduser()
        return _segmentation("path", str(where), camvid.read_segnet(where))
    folder = keras_cache() / CAMVID_CACHE_SUBDIR
    if camvid.is_segnet_folder(folder):
        return _segmentation("cache", str(folder), camvid.read_segnet(folder))
    if folder.is_dir() and any(folder.iterdir()):
        raise _Missing(f"{folder} exists but holds no train/*.png (SegNet layout); fix or "
                       f"remove it")
    _may_download("camvid", f"{folder} is missing")
    origin = configured_origin()
    url = f"{origin}/{CAMVID_ARCHIVE}" if origin else CAMVID_DEFAULT_URL
    try:
        camvid.fetch_archive(url, folder)
    except (DownloadFailed, FileNotFoundError) as exc:
        _failed_downloads["camvid"] = f"{folder} is missing and the download failed: {exc}"
        raise _Missing(_failed_downloads["camvid"]) from None
    return _segmentation("downloaded", f"{url} -> {folder}", camvid.read_segnet(folder))


def _may_download(name: str, cached: str) -> None:
    """Raises _Missing when this process may not (or need not again) try a download."""
    if offline():
        raise _Missing(f"{OFFLINE_ENV} is set and {cached}")
    if name in _failed_downloads:
        raise _Missing(f"{_failed_downloads[name]} (not retried in this process)")


def _classification(
    name: str, source: Source, location: str, x: np.ndarray, y: np.ndarray, size: int
) -> Images:
    images, labels = resize(x, size), np.asarray(y, dtype=np.int64)
    freeze(images, labels)
    return Images(images, labels, CLASSES, _record(name, source, location, images, labels))


def _segmentation(
    source: Source, location: str,
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None],
) -> Images:
    freeze(*arrays)
    x, y, x_val, y_val = arrays
    record = DatasetRecord(
        name="camvid", source=source, location=location, n_train=len(x),
        n_val=0 if x_val is None else len(x_val), sha256=content_sha256(*arrays),
    )
    return Images(x, y, camvid.CLASSES, record, ignore_class=camvid.VOID, x_val=x_val,
                  y_val=y_val)


def _digits_fallback(name: str, size: int, reason: str) -> Images:
    x, y = digits(size)
    record = _record("digits", "fallback", _digits_at(size), x, y, fallback_for=name,
                     reason=reason)
    return Images(x, y, CLASSES, record)


def _masks_fallback(name: str, size: int, reason: str) -> Images:
    x, masks = digit_masks(size)
    record = _record("digits", "fallback", _digits_at(size, masks=True), x, masks,
                     fallback_for=name, reason=reason)
    return Images(x, masks, MASK_CLASSES, record)


def _record(
    name: str, source: Source, location: str, x: np.ndarray, y: np.ndarray, *,
    fallback_for: str | None = None, reason: str | None = None,
) -> DatasetRecord:
    return DatasetRecord(name=name, source=source, location=location, n_train=len(x), n_val=0,
                         sha256=content_sha256(x, y), fallback_for=fallback_for, reason=reason)


def _digits_at(size: int, *, masks: bool = False) -> str:
    what = "per-pixel digit masks" if masks else "images"
    return f"{LOCATION} ({what}, resized to {size}x{size})"


def _refuse_path(name: str, options: DataOptions) -> None:
    if options.path is not None:
        raise ValueError(f"dataset {name!r} is bundled with scikit-learn; data.path "
                         f"({options.path!r}) is not used with it")


def _how_to_provide(name: str) -> str:
    cache = keras_cache()
    if name == "camvid":
        files = f"a SegNet-layout CamVid folder as {cache / CAMVID_CACHE_SUBDIR}"
    else:
        files = f"{CLASSIFICATION[name].read} into {cache}"
    return (
        f"Provide it by running once with network access (it downloads into {cache}), by "
        f"setting {ORIGIN_ENV} to a mirror, by copying {files}, or with data.path."
    )
