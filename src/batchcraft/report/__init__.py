"""Curation and serving reports: ``DIR/report.html`` and ``DIR/report.json``.

Example:
    >>> from batchcraft.report import write_report
    >>> summary = write_report("curated/")  # doctest: +SKIP
    >>> summary.html_path  # doctest: +SKIP
    PosixPath('curated/report.html')
"""

from batchcraft.report.cli import add_report_arguments, run_report
from batchcraft.report.writer import ReportSummary, build_report, write_report

__all__ = ["ReportSummary", "add_report_arguments", "build_report", "run_report", "write_report"]
