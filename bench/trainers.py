"""Seconds per epoch of each built-in trainer at its default size on this machine.

Each trainer runs `--epochs` epochs with its default parameters and arguments (offline data
where no dataset is cached); the table gives the first epoch (tracing included) and the
median of the later ones. Run: python bench/trainers.py [--epochs 4] [--output FILE.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from objectives.base import Objective, TrialContext
from objectives.densenet import DENSENET, depth
from objectives.gan import GAN
from objectives.softmax import SOFTMAX
from objectives.vae import VAE

CASES: list[tuple[str, Objective, dict[str, Any]]] = [
    ("softmax", SOFTMAX, {}),
    ("vae (dense)", VAE, {"architecture": "dense"}),
    ("vae (conv)", VAE, {"architecture": "conv"}),
    ("gan", GAN, {}),
    ("densenet", DENSENET, {}),
]


def measure(obj: Objective, args: dict[str, Any], epochs: int, work: Path,
            threads: int | None) -> dict[str, Any]:
    """Trains `epochs` epochs; returns per-epoch seconds and the final metric."""
    ctx = TrialContext(trial_id=1, study_id=0, seed=0, artifact_dir=work / "artifacts",
                       threads=threads)
    full = {**args, "epochs": epochs, "images": False}
    if obj is GAN:
        full["cache_dir"] = str(work / "cache")
    value = obj.run({}, full, ctx)
    rows = (ctx.artifact_dir / "metrics.csv").read_text().splitlines()
    column = rows[0].split(",").index("seconds")
    seconds = [float(row.split(",")[column]) for row in rows[1:]]
    parsed = obj.parse_args(full)
    return {"seconds": seconds, "value": value, "args": parsed, "dataset": ctx.dataset or {}}


def describe(obj: Objective, args: Any, dataset: dict[str, Any]) -> str:
    """The default size, naming the data the trial recorded (a fallback says so)."""
    data = (f"{dataset.get('name', '?')} ({dataset.get('source', '?')}, "
            f"{dataset.get('n_train', '?')}/{dataset.get('n_val', '?')})")
    extra = ""
    if obj is DENSENET:
        extra = f", {depth(args)} down blocks, batch {args.batch_size}"
    return f"{data}{extra}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--only", nargs="*", default=None, help="trainer labels to run")
    parser.add_argument("--output", type=Path, default=None)
    opts = parser.parse_args()
    import keras

    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, Keras {keras.__version__} "
        f"({keras.backend.backend()} backend); {opts.epochs} epochs per trainer, "
        f"threads={opts.threads or 'all'}; {time.strftime('%Y-%m-%d')}.",
        "",
        "| trainer | default size | metric | first epoch s | median later epoch s | final |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for label, obj, args in CASES:
        if opts.only and label not in opts.only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            r = measure(obj, args, opts.epochs, Path(tmp), opts.threads)
        later = r["seconds"][1:] or r["seconds"]
        lines.append(
            f"| {label} | {describe(obj, r['args'], r['dataset'])} | {obj.metric} | "
            f"{r['seconds'][0]:.2f} | "
            f"{statistics.median(later):.2f} | {r['value']:.4g} |"
        )
        print(lines[-1], flush=True)
    table = "\n".join(lines) + "\n"
    print(table)
    if opts.output:
        opts.output.write_text(table)


if __name__ == "__main__":
    main()
