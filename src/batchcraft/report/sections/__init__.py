"""The report's sections: one small protocol and the ordered registry the writer iterates.

Each section is one module, ``sections/<name>.py``, holding its accumulator (what it
counts in the streaming scan), its JSON (``report.json[name]``), its warnings and its
HTML (``<section id="name">``). A section too large for one module keeps its parts
beside it as ``sections/<name>_<part>.py`` (e.g. ``funnel_rejects.py``).

Adding a section: write its module, then add it to ``SECTIONS`` at the place where it
should appear in report.json and on the page. A section may read the JSON of the
sections before it (``report`` in ``to_json``), never of those after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from batchcraft.report.html import Html
from batchcraft.report.inputs import ReportInputs
from batchcraft.report.sections.clusters import ClustersSection
from batchcraft.report.sections.concepts import ConceptsSection
from batchcraft.report.sections.duplicates import DuplicatesSection
from batchcraft.report.sections.funnel import FunnelSection
from batchcraft.report.sections.run import RunSection
from batchcraft.report.sections.serving import ServingSection

StatsT = TypeVar("StatsT")


class Section(Protocol[StatsT]):
    """One part of the report: a key of report.json and a ``<section>`` of report.html.

    Attributes:
        name: The key in report.json and the anchor of the HTML section.
        title: The section's heading and its entry in the table of contents.
    """

    name: str
    title: str

    def accumulator(self, inputs: ReportInputs) -> StatsT:
        """The section's running statistics, fed by the scan when they are an
        `batchcraft.report.scan.Accumulator` (None when the section counts nothing)."""

    def to_json(
        self, stats: StatsT, inputs: ReportInputs, report: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The section's part of report.json, or None when it has nothing to report.

        Args:
            stats: What ``accumulator`` returned, after the scan.
            inputs: The opened dataset.
            report: report.json so far, with the sections before this one.
        """

    def warnings(self, data: dict[str, Any], inputs: ReportInputs) -> list[str]:
        """Problems the section found (contract breaks, disagreements), for the page's top."""

    def to_html(self, data: dict[str, Any]) -> Html:
        """The section's HTML, from its own JSON only."""


SECTIONS: tuple[Section[Any], ...] = (
    FunnelSection(),
    ClustersSection(),
    DuplicatesSection(),
    ConceptsSection(),
    RunSection(),
    ServingSection(),
)
"""Every section, in the order of report.json and of the page."""

__all__ = ["SECTIONS", "Section"]
