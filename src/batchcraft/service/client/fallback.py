"""Telling a trainer, once, that its feedback selector serves uniform batches.

A feedback selector (``jest``, a loss-based ``coreset`` ...) draws uniform
batches while its job has no feedback at all: the server marks such a batch
with the selector ``uniform`` (and ``fallback_from`` in its info). The first
few batches of a run are always such draws, and the server selects up to
``max_in_flight`` batches ahead, so only a run of them longer than that says
something is wrong: the trainer does not call `BatchClient.report`, or reports
what the selector cannot use.
"""

from __future__ import annotations

import logging

LOG = logging.getLogger("batchcraft.client")


class FallbackWatch:
    """Counts consecutive fallback batches and warns once when they outlast the window.

    Args:
        selector: the selector the client asked for.
        window: batches the server may select ahead (``max_in_flight``).
    """

    def __init__(self, selector: str, window: int) -> None:
        self.selector = selector
        self.patience = window + 1
        self.reported = False  # set when the client sends feedback
        self.warned = False
        self._run = 0

    def received(self, served_by: str) -> None:
        """A batch made by selector ``served_by`` arrived."""
        if self.selector == "uniform" or served_by != "uniform":
            self._run = 0
            return
        self._run += 1
        if self._run > self.patience and not self.warned:
            self.warned = True
            LOG.warning(
                "selector %r has served %d uniform batches in a row: its job has no feedback it "
                "can use yet. %s",
                self.selector,
                self._run,
                "Feedback was reported: check it names the columns this selector needs (see "
                "the README's feedback table)."
                if self.reported
                else "Call client.report(batch['id'], losses=...) after each training step.",
            )
