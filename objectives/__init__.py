"""Objective trainers and their registry. Nothing here imports TensorFlow at import time."""

from objectives.base import Objective, TrialContext, TrialDiverged, TrialPruned
from objectives.registry import available, get

__all__ = ["Objective", "TrialContext", "TrialDiverged", "TrialPruned", "available", "get"]
