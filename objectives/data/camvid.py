"""CamVid in the SegNet layout: reading a folder, and filling the cache from a zip archive.

Layout (the SegNet tutorial's CamVid folder): train/ and val/ hold RGB frames as PNG,
trainannot/ and valannot/ a label PNG of the same name and size per frame, each pixel one
of the 11 classes (0-10: sky, building, pole, road, sidewalk, tree, sign, fence, car,
pedestrian, bicyclist) or void (11); values above 11 are read as void. test/ and testannot/
may be present and are not read. val/ is optional: without it the validation part is drawn
from train/.

Frames are kept at their native resolution (360x480 in CamVid): every frame of a folder
must have the same size. Shapes: frames (n, h, w, 3) float32 in [0, 1], masks (n, h, w)
uint8.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from objectives.data.fetch import DownloadFailed, download, remove_tree

CLASSES = 11
VOID = 11
PARTS = ("train", "val")
ARCHIVE_PARTS = ("train", "trainannot", "val", "valannot", "test", "testannot")


def is_segnet_folder(folder: Path) -> bool:
    """True when `folder/train` holds at least one PNG frame."""
    train = folder / "train"
    return train.is_dir() and any(train.glob("*.png"))


def read_segnet(
    folder: Path,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(train frames, train masks, val frames or None, val masks or None) of `folder`.

    Raises FileNotFoundError when train/ has no frame or a frame has no label, ValueError
    when sizes differ.
    """
    if not is_segnet_folder(folder):
        raise FileNotFoundError(f"no CamVid frames in {folder / 'train'} (SegNet layout)")
    parts = {}
    for part in PARTS:
        if (folder / part).is_dir():
            parts[part] = _read_part(folder, part)
    shapes = {p: frames.shape[1:3] for p, (frames, _) in parts.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"CamVid parts differ in frame size: {shapes}")
    x_train, y_train = parts["train"]
    x_val, y_val = parts.get("val", (None, None))
    return x_train, y_train, x_val, y_val


def _read_part(folder: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    frames: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    for img_path in sorted((folder / part).glob("*.png")):
        ann = folder / f"{part}annot" / img_path.name
        if not ann.exists():
            raise FileNotFoundError(f"CamVid label {ann} missing for {img_path}")
        with Image.open(img_path) as img:
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
        with Image.open(ann) as lab:
            mask = np.asarray(lab, dtype=np.int64)
        if mask.shape != rgb.shape[:2]:
            raise ValueError(f"{ann} is {mask.shape}, its frame {img_path} is {rgb.shape[:2]}")
        if frames and rgb.shape != frames[0].shape:
            raise ValueError(f"{img_path} is {rgb.shape[:2]}; frames before it are "
                             f"{frames[0].shape[:2]} (frames are not resized)")
        frames.append(rgb)
        masks.append(np.minimum(mask, VOID).astype(np.uint8))
    x = np.stack(frames).astype(np.float32) / np.float32(255.0)
    return x, np.stack(masks)


def fetch_archive(url: str, dest: Path) -> None:
    """Downloads the zip at `url` and keeps its CamVid folder as `dest` (SegNet layout).

    Members are taken from any `.../CamVid/<part>/<file>.png` in the archive, written by
    file name only (nothing outside `dest` is ever written). The zip and a half-extracted
    folder are removed on failure; `dest` appears only once complete. Raises
    DownloadFailed (an OSError) or FileNotFoundError when the archive holds no CamVid
    frames.
    """
    archive = dest.parent / f".{dest.name}.zip"
    staging = dest.parent / f".{dest.name}.part-{os.getpid()}"
    try:
        download(url, archive, checksum=None)
        remove_tree(staging)
        _extract(archive, staging)
        if not is_segnet_folder(staging):
            raise FileNotFoundError(f"{url} holds no CamVid/train/*.png")
        with contextlib.suppress(OSError):
            dest.rmdir()  # an empty folder left by an earlier failed download
        os.replace(staging, dest)
    finally:
        remove_tree(staging)
        with contextlib.suppress(FileNotFoundError):
            archive.unlink()


def _extract(archive: Path, staging: Path) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise DownloadFailed(f"{archive} is not a zip archive: {exc}") from exc
    with zf:
        for info in zf.infolist():
            parts = PurePosixPath(info.filename).parts
            if info.is_dir() or len(parts) < 3 or not info.filename.endswith(".png"):
                continue
            folder, part, name = parts[-3], parts[-2], parts[-1]
            if folder != "CamVid" or part not in ARCHIVE_PARTS:
                continue
            target = staging / part / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, target.open("wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
