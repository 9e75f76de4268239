"""The one text every training command ends with: what was trained, on what, how long, where it went."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def describe_run(summary: dict[str, Any], what: str, saved: str | Path, details: str = "") -> str:
    """Steps, pairs, seconds, final loss (and ``details``), where the result was saved, the last validation.

    Args:
        summary: a recipe's run summary (``Trainer.summary()`` plus ``pairs``).
        what: the model's name as a table would show it, e.g. ``Hash-BERT(256)``.
        saved: the directory the trained model went to.
    """
    state = summary["state"]
    lines = [
        f"trained {what}: {state['step']} steps on {summary['pairs']} pairs in {state['seconds']:.0f} s "
        f"(final loss {state['loss_ema']:.4f}{details}); saved to {saved}"
    ]
    if state["validations"]:
        last = state["validations"][-1]
        lines.append("validation: " + ", ".join(f"{k}={v:.4f}" for k, v in last.items() if k.startswith(("R", "MRR"))))
    return "\n".join(lines)
