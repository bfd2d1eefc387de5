"""FC-DenseNet ("Tiramisu") for semantic segmentation on CamVid.

Down path: dense block -> skip -> transition down (BN, ReLU, 1x1 conv stride 2, dropout),
once per down block; a bottleneck dense block; up path: transition up (3x3 transposed conv
stride 2 over the block's new feature maps) -> concatenate the skip -> dense block, the up
blocks mirroring the down blocks. A dense layer is BN -> ReLU -> 3x3 conv (growth_rate
filters) -> dropout, concatenated to its input. RMSprop with inverse-time learning-rate
decay (Keras 2's `decay`) and L2 on every kernel. The architecture (presets
fc-densenet56/67/103, per-block layer lists): `objectives.densenet.architecture`.

Data: CamVid at native resolution (360x480), trained on random `crop_size` crops (224 as in
the paper) with random horizontal flips, validated on full frames (padded with void to a
multiple of 2**down blocks); the bundled digit masks are smaller than a crop and are
trained whole (flipped too). Metric: validation mean IoU over the 11 classes, void ignored (over the
classes that occur in the truth or the prediction) (maximize).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator

from objectives.base import Objective
from objectives.common import TrainerArgs
from objectives.data import SegmentationDataset
from objectives.densenet.architecture import PRESETS, Preset, depth, fixed_params

DEFAULTS = {
    "growth_rate": 12,
    "layers_per_block": 4,
    "dropout": 0.2,
    "learning_rate": 1e-3,
    "l2_scale": 1e-4,
    "rmsprop_decay": 5e-5,
}


class DenseNetArgs(TrainerArgs):
    dataset: SegmentationDataset = Field(
        default="camvid", description="camvid | digits (bundled per-pixel digit masks)."
    )
    preset: Preset | None = Field(
        default=None, description="The paper's models: fc-densenet56 | 67 | 103."
    )
    layers_per_block: int | list[int] | None = Field(
        default=None,
        description="Dense layers per down block: one for all, or a list (one per block; "
        "the up path mirrors it). Fixes the searched `layers_per_block` parameter.",
    )
    bottleneck_layers: int | None = Field(
        default=None, ge=1, le=64,
        description="Default: the preset's, else the last down block's layer count.",
    )
    down_blocks: int | None = Field(
        default=None, ge=1, le=6, description="Default: the list's length, the preset's, or 2."
    )
    first_filters: int | None = Field(
        default=None, ge=4, le=128, description="Default: the preset's (48), else 16."
    )
    image_size: int = Field(
        default=32, ge=8, le=512,
        description="Side of the digit masks (CamVid keeps its native resolution).",
    )
    crop_size: int = Field(
        default=224, ge=8, le=1024,
        description="Training frames larger than this (both sides) are cut to a random "
        "crop_size x crop_size window; smaller ones are used whole.",
    )
    flip: bool = Field(default=True, description="Random horizontal flips of training frames.")
    batch_size: int = Field(default=16, ge=1, le=1024)
    epochs: int = Field(default=10, ge=1, le=10_000)

    @model_validator(mode="after")
    def _check_shape(self) -> DenseNetArgs:
        lists = self.layers_per_block
        if isinstance(lists, list) and not (1 <= len(lists) <= 6 and all(
                1 <= n <= 64 for n in lists)):
            raise ValueError(f"layers_per_block {lists} must list 1 to 6 blocks of 1 to 64")
        if isinstance(lists, int) and not 1 <= lists <= 64:
            raise ValueError(f"layers_per_block {lists} must be 1 to 64")
        natural = (len(lists) if isinstance(lists, list) else
                   len(PRESETS[self.preset].blocks) if self.preset is not None else None)
        if self.down_blocks is not None and natural is not None and self.down_blocks != natural:
            raise ValueError(f"down_blocks {self.down_blocks} contradicts the "
                             f"{natural} blocks of layers_per_block or the preset")
        step = 2 ** depth(self)
        for name in ("image_size", "crop_size"):
            if getattr(self, name) % step:
                raise ValueError(f"{name} {getattr(self, name)} must be a multiple of "
                                 f"2**down_blocks = {step}")
        return self


PARAMETERS: dict[str, dict[str, Any]] = {
    "growth_rate": {"type": "int", "low": 4, "high": 16},
    "layers_per_block": {"type": "int", "low": 1, "high": 5},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "l2_scale": {"type": "float", "low": 1e-6, "high": 1e-3, "log": True},
    "rmsprop_decay": {"type": "float", "low": 1e-6, "high": 1e-3, "log": True},
}


def space_for(args: DenseNetArgs) -> Mapping[str, Mapping[str, Any]]:
    """Every parameter the arguments leave free (a preset fixes the architecture)."""
    fixed = fixed_params(args)
    return {name: spec for name, spec in PARAMETERS.items() if name not in fixed}


DENSENET = Objective(
    name="densenet",
    description="FC-DenseNet semantic segmentation on CamVid (presets 56/67/103); "
    "metric: validation mean IoU.",
    metric="val_mean_iou",
    direction="maximize",
    space=space_for(DenseNetArgs()),
    space_fn=space_for,
    defaults=DEFAULTS,
    train="objectives.densenet.trainer:train",
    args_model=DenseNetArgs,
)
