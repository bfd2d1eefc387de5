"""Downloads into the Keras cache: the network rules, in one place.

Rules:
- `TUNESMITH_OFFLINE` set to anything but "", "0", "false" or "no" means no network access
  at all: `offline()` is True and `download` refuses before opening a connection.
- `TUNESMITH_DATA_ORIGIN` (a base URL, http(s):// or file://) replaces every dataset's
  default origin: a file is fetched from `<origin>/<file name>` (the file names of the
  default origins, see `objectives.data.sources`). Known checksums belong to the default
  origins' files, so they are checked only there; a file from a configured origin is
  trusted as the operator's, and what it held is still identified by the dataset record's
  content hash.
- A download is atomic: bytes go to a temporary file beside the destination (named after
  this process), the checksum (if any) is verified, and only then is the file renamed into
  place. On any failure the temporary file is removed and the destination is untouched;
  files that arrived but do not read as the dataset are removed by the loader
  (`objectives.data.load`). A failed download never leaves something that reads as data.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

OFFLINE_ENV = "TUNESMITH_OFFLINE"
ORIGIN_ENV = "TUNESMITH_DATA_ORIGIN"
TIMEOUT_SECONDS = 60.0
SCHEMES = ("http", "https", "file")
CHUNK = 1 << 20


class DownloadFailed(OSError):
    """A download did not produce a verified file; the message says which URL and why."""


@dataclass(frozen=True)
class Checksum:
    algorithm: Literal["sha256", "md5"]
    hexdigest: str


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def configured_origin() -> str | None:
    """`TUNESMITH_DATA_ORIGIN` without a trailing slash, or None when unset."""
    origin = os.environ.get(ORIGIN_ENV, "").strip()
    return origin.rstrip("/") or None


def keras_cache() -> Path:
    """The Keras dataset cache: $KERAS_HOME/datasets, default ~/.keras/datasets."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() / "datasets"


def resolve(
    file_name: str, default_origin: str, checksum: Checksum | None
) -> tuple[str, Checksum | None]:
    """(URL, checksum to verify) of `file_name` under the configured or the default origin."""
    origin = configured_origin()
    if origin is None:
        return f"{default_origin.rstrip('/')}/{file_name}", checksum
    return f"{origin}/{file_name}", None


def download(url: str, dest: Path, *, checksum: Checksum | None,
             timeout: float = TIMEOUT_SECONDS) -> None:
    """Fetches `url` into `dest` atomically (see the module rules).

    Raises DownloadFailed when offline, for a scheme other than http(s)/file, on any network
    or file error, and on a checksum mismatch.
    """
    if offline():
        raise DownloadFailed(f"{OFFLINE_ENV} is set; not downloading {url}")
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise DownloadFailed(f"{url}: scheme {scheme!r} is not one of {SCHEMES}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
    digest = hashlib.new(checksum.algorithm) if checksum else None
    log.info("downloading %s to %s", url, dest)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, tmp.open("wb") as out:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                if digest is not None:
                    digest.update(chunk)
        if checksum is not None and digest is not None and digest.hexdigest() != checksum.hexdigest:
            raise DownloadFailed(
                f"{url}: {checksum.algorithm} {digest.hexdigest()} does not match the known "
                f"{checksum.hexdigest}"
            )
        os.replace(tmp, dest)
    except DownloadFailed:
        raise
    except (OSError, ValueError) as exc:  # URLError and socket timeouts are OSErrors
        raise DownloadFailed(f"{url}: {type(exc).__name__}: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    log.info("downloaded %s (%d bytes)", dest, dest.stat().st_size)


def remove_tree(path: Path) -> None:
    """Removes a temporary folder this module made; missing is fine."""
    shutil.rmtree(path, ignore_errors=True)
