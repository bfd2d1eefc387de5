"""FC-DenseNet ("Tiramisu") for semantic segmentation on CamVid.

Down path: dense block -> skip -> transition down (BN, ReLU, 1x1 conv stride 2, dropout),
`down_blocks` times; a bottleneck dense block; up path: transition up (3x3 transposed conv
stride 2 over the block's new feature maps) -> concatenate the skip -> dense block. A dense
layer is BN -> ReLU -> 3x3 conv (growth_rate filters) -> dropout, concatenated to its input.
RMSprop with inverse-time learning-rate decay (Keras 2's `decay`) and L2 on every kernel.
Metric: validation mean IoU over classes present (void ignored on CamVid) (maximize).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from objectives.base import Objective
from objectives.common import TrainerArgs

DEFAULTS = {
    "growth_rate": 12,
    "layers_per_block": 4,
    "dropout": 0.2,
    "learning_rate": 1e-3,
    "l2_scale": 1e-4,
    "rmsprop_decay": 5e-5,
}


class DenseNetArgs(TrainerArgs):
    image_size: int = Field(default=32, ge=8, le=512)
    down_blocks: int = Field(default=2, ge=1, le=6, description="FC-DenseNet56 uses 5.")
    first_filters: int = Field(default=16, ge=4, le=128, description="The paper uses 48.")
    batch_size: int = Field(default=16, ge=1, le=1024)
    epochs: int = Field(default=10, ge=1, le=10_000)

    @model_validator(mode="after")
    def _check_size(self) -> DenseNetArgs:
        step = 2**self.down_blocks
        if self.image_size % step:
            raise ValueError(
                f"image_size {self.image_size} must be a multiple of 2**down_blocks = {step}"
            )
        return self


DENSENET = Objective(
    name="densenet",
    description="FC-DenseNet semantic segmentation on CamVid (offline: digit masks); "
    "metric: validation mean IoU.",
    metric="val_mean_iou",
    direction="maximize",
    space={
        "growth_rate": {"type": "int", "low": 4, "high": 16},
        "layers_per_block": {"type": "int", "low": 1, "high": 5},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "l2_scale": {"type": "float", "low": 1e-6, "high": 1e-3, "log": True},
        "rmsprop_decay": {"type": "float", "low": 1e-6, "high": 1e-3, "log": True},
    },
    train="objectives.densenet.trainer:train",
    args_model=DenseNetArgs,
)
