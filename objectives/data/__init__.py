"""Datasets for the built-in trainers and the record of what each trial trained on.

- `load_images` / `load_segmentation`: real data from `data.path`, the Keras cache or a
  download, else the bundled fallback or `DataUnavailable` (rules in `objectives.data.load`).
- `split`: the trial's seeded train/validation parts (`objectives.data.arrays`).
- `DatasetRecord`: name, source, location, sizes and content hash (`objectives.data.record`).
- Network rules (TUNESMITH_OFFLINE, TUNESMITH_DATA_ORIGIN, atomic downloads):
  `objectives.data.fetch`; origins, file names and checksums: `objectives.data.sources`.

Nothing here imports a deep-learning framework.
"""

from objectives.data.arrays import Images, Split, split
from objectives.data.fetch import keras_cache
from objectives.data.load import (
    ImageDataset,
    SegmentationDataset,
    forget_loaded,
    load_images,
    load_segmentation,
)
from objectives.data.options import DataOptions
from objectives.data.record import DatasetRecord, DataUnavailable

__all__ = [
    "DataOptions",
    "DataUnavailable",
    "DatasetRecord",
    "ImageDataset",
    "Images",
    "SegmentationDataset",
    "Split",
    "forget_loaded",
    "keras_cache",
    "load_images",
    "load_segmentation",
    "split",
]
