"""The reports of a run: `report.json` for machines, `junit.xml` for CI, `report.html` for people, and the
summary table for the terminal. All are pure renderings of a `RunSummary` (the HTML draws each scenario's
timeline from its `RunRecord`), so a stored run can be reported again without a database.

Modules: `outcome` (what each scenario-check means for CI: passed, failed, undecided), `document`
(report.json, and reading it back), `junit`, `timeline` (the SVG), `page` (the HTML), `table` (terminal),
`writer` (the files, replaced atomically).
"""

from __future__ import annotations

from harness.reports.document import load_report, report_document
from harness.reports.junit import junit_xml
from harness.reports.page import report_html
from harness.reports.table import report_table, summary_table
from harness.reports.writer import write_reports

__all__ = [
    "junit_xml",
    "load_report",
    "report_document",
    "report_html",
    "report_table",
    "summary_table",
    "write_reports",
]
