"""Variational autoencoder on MNIST: the dense VAE and the convolutional VAE of the sources.

dense: 784 -> Dense(hidden_units, relu) -> z_mean, z_log_var (latent_dim); decoder
latent_dim -> Dense(hidden_units, relu) -> Dense(784, sigmoid).
conv: Conv2D(filters) -> Conv2D(2 filters, stride 2) -> Conv2D(2 filters) x2 -> Dense(32, relu)
-> z_mean, z_log_var; decoder Dense -> Conv2DTranspose(filters, stride 2) -> Conv2D(sigmoid).
Training loss per image: sum-over-pixels binary cross-entropy + kl_weight * KL. Metric: the
validation negative ELBO per image (reconstruction + KL with weight 1; one sample of z),
so trials with different KL weights stay comparable (minimize).

`hidden_units` is used by the dense architecture only and `filters` by the convolutional
one. The default space searches the architecture too, as a categorical parameter with
`hidden_units` conditioned on `dense` and `filters` on `conv`: a trial gets only the one its
architecture uses, and the optimizer never spends a dimension on the other. With the
`architecture` argument set, the space is that architecture's alone
(`VAE.space_for({"architecture": "conv"})`), and a trial that sets the other architecture's
parameter fails at once instead of searching a dimension that changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from objectives.base import Objective
from objectives.common import TrainerArgs
from objectives.data import ImageDataset

DEFAULTS = {
    "architecture": "dense",
    "learning_rate": 1e-3,
    "latent_dim": 2,
    "hidden_units": 256,
    "filters": 32,
    "kl_weight": 1.0,
    "optimizer": "adam",
    "batch_size": 64,
}


class VAEArgs(TrainerArgs):
    architecture: Literal["dense", "conv"] | None = Field(
        default=None,
        description="dense | conv; default: searched (the `architecture` parameter).",
    )
    dataset: ImageDataset = Field(
        default="mnist", description="mnist | fashion_mnist | digits (bundled, 8x8 resized)."
    )
    image_size: int = Field(default=28, ge=8, le=256, multiple_of=2)
    epochs: int = Field(default=10, ge=1, le=10_000)


PARAMETERS: dict[str, dict[str, Any]] = {
    "architecture": {"type": "categorical", "choices": ["dense", "conv"]},
    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "latent_dim": {"type": "int", "low": 2, "high": 32},
    "hidden_units": {
        "type": "int", "low": 32, "high": 512, "log": True, "condition": {"architecture": ["dense"]}
    },
    "filters": {
        "type": "int", "low": 8, "high": 64, "step": 8, "condition": {"architecture": ["conv"]}
    },
    "kl_weight": {"type": "float", "low": 1e-2, "high": 10.0, "log": True},
    "optimizer": {"type": "categorical", "choices": ["adam", "rmsprop", "sgd"]},
    "batch_size": {"type": "int", "low": 16, "high": 256, "log": True},
}
ARCHITECTURE_PARAMETERS = {"dense": {"hidden_units"}, "conv": {"filters"}}


def unused_params(architecture: str) -> set[str]:
    """The parameters only the other architectures use."""
    return {name for arch, names in ARCHITECTURE_PARAMETERS.items() if arch != architecture
            for name in names}


def space_for(args: VAEArgs) -> Mapping[str, Mapping[str, Any]]:
    """The conditional space over both architectures, or, with `args.architecture` set, the
    parameters that architecture uses (no `architecture` parameter, no conditions)."""
    if args.architecture is None:
        return PARAMETERS
    unused = unused_params(args.architecture) | {"architecture"}
    return {
        name: {k: v for k, v in spec.items() if k != "condition"}
        for name, spec in PARAMETERS.items()
        if name not in unused
    }


def architecture_of(params: Mapping[str, Any], args: VAEArgs) -> str:
    """The trial's architecture: its `architecture` parameter, else the argument, else dense.
    Raises ValueError when the parameter contradicts the argument."""
    chosen = params.get("architecture")
    if chosen is not None and args.architecture is not None and chosen != args.architecture:
        raise ValueError(
            f"parameter architecture={chosen!r} contradicts the argument "
            f"architecture={args.architecture!r}; set one of them"
        )
    return str(chosen or args.architecture or DEFAULTS["architecture"])


VAE = Objective(
    name="vae",
    description="Dense or convolutional VAE on MNIST; metric: validation negative ELBO per image.",
    metric="val_neg_elbo",
    direction="minimize",
    space=space_for(VAEArgs()),
    space_fn=space_for,
    defaults=DEFAULTS,
    train="objectives.vae.trainer:train",
    args_model=VAEArgs,
)
