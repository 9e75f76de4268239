"""Ctrl-C at a step boundary: the first SIGINT only asks the training loop to stop, the second stops at once.

Why: Python raises ``KeyboardInterrupt`` wherever the main thread happens to be: in the forward pass
after dropout drew from the RNG, between ``optimizer.step()`` and ``scheduler.step()``, or between the
step and its counters. A checkpoint of such a state resumes into another run. Deferring the stop to the
end of the step lets the trainer save exactly what an uninterrupted run saves at that step.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)


class StepBoundaryInterrupt:
    """Context manager turning the first Ctrl-C into ``requested = True``; a second one raises at once.

    The previous SIGINT handler is restored on exit. Outside the main thread (where Python cannot install
    signal handlers), or when SIGINT is ignored, nothing is installed and ``requested`` stays False.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> StepBoundaryInterrupt:
        if threading.current_thread() is not threading.main_thread():
            return self
        previous = signal.getsignal(signal.SIGINT)
        if previous is signal.SIG_IGN:
            return self
        # None: installed outside Python; restore Python's default then
        self._previous = signal.default_int_handler if previous is None else previous
        signal.signal(signal.SIGINT, self._handle)
        self._installed = True
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            self._restore()
            raise KeyboardInterrupt
        self.requested = True
        logger.warning("Ctrl-C: finishing this step, then saving a checkpoint; Ctrl-C again stops without saving")

    def _restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def __exit__(self, *exc: object) -> None:
        self._restore()
