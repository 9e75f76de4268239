"""The loss curve every training recipe writes next to its run: ``loss.png``."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


def plot_loss(path: Path, losses: list[float], title: str = "DR-BERT training loss") -> None:
    """Plot the moving mean of a run's per-step losses to a PNG (nothing for fewer than two steps)."""
    from hashbert.evaluation.report import plot_metric_vs

    if len(losses) >= 2:
        window = max(1, len(losses) // 10)
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        points = [(i + window, float(v)) for i, v in enumerate(smooth)]
        plot_metric_vs(path, {"in-batch loss": points}, "step", "loss (moving mean)", title)
