"""Writing the three reports into a run folder, each file replaced whole.

The runner may call `write_reports` after every scenario, not only at the end: a run cut short (Ctrl-C, a CI
timeout, a crashed harness) then still leaves reports for the scenarios that finished. Each file is written
beside its final name and renamed over it, so a reader (CI, a person refreshing the page) never sees half a
file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from harness.records import RunSummary
from harness.reports.document import REPORT_JSON, dump, report_document
from harness.reports.junit import junit_xml
from harness.reports.page import report_html

JUNIT_XML = "junit.xml"
REPORT_HTML = "report.html"


def replace_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically: a temporary file in the same folder, then a rename."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_reports(summary: RunSummary, folder: Path) -> dict[str, Path]:
    """Write report.json, junit.xml and report.html into the run folder; return them by kind."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {
        "json": (folder / REPORT_JSON, dump(report_document(summary, folder)).encode("utf-8")),
        "junit": (folder / JUNIT_XML, junit_xml(summary)),
        "html": (folder / REPORT_HTML, report_html(summary, folder).encode("utf-8")),
    }
    for path, data in written.values():
        replace_file(path, data)
    return {kind: path for kind, (path, _data) in written.items()}
