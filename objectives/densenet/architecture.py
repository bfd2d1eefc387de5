"""FC-DenseNet's shape: the paper's presets and how arguments and parameters resolve to one.

The Tiramisu paper (Jegou et al., 2017) trains three models, each with a first 3x3
convolution of 48 filters and five down blocks (the up path mirrors them):

| preset         | layers per down block | bottleneck | growth rate | conv layers |
| fc-densenet56  | 4, 4, 4, 4, 4         | 4          | 12          | 56          |
| fc-densenet67  | 5, 5, 5, 5, 5         | 5          | 16          | 67          |
| fc-densenet103 | 4, 5, 7, 10, 12       | 15         | 16          | 103         |

Conv layers are counted as the paper counts them: the first convolution, one per dense
layer (down path, bottleneck, up path), one per transition down and up, and the final 1x1
classifier: 1 + 2 * sum(blocks) + bottleneck + 2 * len(blocks) + 1.

Resolution rules (first match wins for each field):
- blocks: `args.layers_per_block` as a list (one per down block); as an int, repeated
  `down_blocks` times; else the preset's; else the trial's `layers_per_block` parameter
  repeated `down_blocks` (default 2) times.
- bottleneck: `args.bottleneck_layers`; else the preset's; else the last down block's.
- growth rate: the preset's; else the trial's `growth_rate` parameter.
- first filters: `args.first_filters`; else the preset's (48); else 16.
A parameter that the arguments fix (`growth_rate` under a preset; `layers_per_block` under a
preset or `args.layers_per_block`) is not in the default space for those arguments, and a
trial that sets it fails (see `objectives.common.merge_params`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Preset = Literal["fc-densenet56", "fc-densenet67", "fc-densenet103"]
DEFAULT_DOWN_BLOCKS = 2
DEFAULT_FIRST_FILTERS = 16


@dataclass(frozen=True)
class Architecture:
    first_filters: int
    blocks: tuple[int, ...]
    bottleneck: int
    growth_rate: int

    @property
    def conv_layers(self) -> int:
        """The paper's layer count (see the module docstring)."""
        return 1 + 2 * sum(self.blocks) + self.bottleneck + 2 * len(self.blocks) + 1


PRESETS: dict[str, Architecture] = {
    "fc-densenet56": Architecture(48, (4, 4, 4, 4, 4), 4, 12),
    "fc-densenet67": Architecture(48, (5, 5, 5, 5, 5), 5, 16),
    "fc-densenet103": Architecture(48, (4, 5, 7, 10, 12), 15, 16),
}


class ShapeArgs(Protocol):
    preset: Preset | None
    down_blocks: int | None
    first_filters: int | None
    layers_per_block: int | list[int] | None
    bottleneck_layers: int | None


def depth(args: ShapeArgs) -> int:
    """The number of down blocks the arguments give (no trial parameter changes it)."""
    if isinstance(args.layers_per_block, list):
        return len(args.layers_per_block)
    if args.down_blocks is not None:
        return args.down_blocks
    if args.preset is not None:
        return len(PRESETS[args.preset].blocks)
    return DEFAULT_DOWN_BLOCKS


def fixed_params(args: ShapeArgs) -> set[str]:
    """Trial parameters the arguments fix (they must not be searched)."""
    fixed = set()
    if args.preset is not None:
        fixed |= {"growth_rate", "layers_per_block"}
    if args.layers_per_block is not None:
        fixed.add("layers_per_block")
    return fixed


def resolve(args: ShapeArgs, params: Mapping[str, Any]) -> Architecture:
    """The architecture of one trial (see the module's resolution rules)."""
    preset = PRESETS[args.preset] if args.preset is not None else None
    n = depth(args)
    given = args.layers_per_block
    if isinstance(given, list):
        blocks = tuple(given)
    elif given is not None:
        blocks = (given,) * n
    elif preset is not None:
        blocks = preset.blocks
    else:
        blocks = (int(params["layers_per_block"]),) * n
    if args.bottleneck_layers is not None:
        bottleneck = args.bottleneck_layers
    else:
        bottleneck = preset.bottleneck if preset is not None else blocks[-1]
    return Architecture(
        first_filters=args.first_filters or (
            preset.first_filters if preset is not None else DEFAULT_FIRST_FILTERS),
        blocks=blocks,
        bottleneck=bottleneck,
        growth_rate=preset.growth_rate if preset is not None else int(params["growth_rate"]),
    )
