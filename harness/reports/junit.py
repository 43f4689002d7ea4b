"""`junit.xml`: one test case per scenario-check, in the JUnit dialect Jenkins and GitLab read.

A run is a `<testsuites>`; each scenario (each repeat of it) is a `<testsuite>` whose cases are its checks,
classname = the scenario (with `#repeat` when repeated), name = the check. An invalid check is a `<failure>`
whose message is its first anomaly and whose body lists them all; a check that could not decide is an
`<error>`, because CI systems show `<skipped>` as green and an undecided chaos check is not a pass. A check
or scenario that does not apply to the pipeline (it lacks a capability) is `<skipped>` with the capability
named. A scenario the harness could not run is one `<error>` case holding the harness error.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from harness.records import RunSummary, ScenarioResult
from harness.reports.document import iso
from harness.reports.outcome import Case, Outcome, case_classname, cases, repeated_names

# XML 1.0 forbids most control characters; a traceback or a witness row may hold them.
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
MESSAGE_CHARS = 1000  # CI systems show the message on one line; the body holds everything


def clean(text: object) -> str:
    """Text that ElementTree can write and any XML parser can read back."""
    return _NOT_XML.sub("\ufffd", str(text))


def _case_element(case: Case, classname: str) -> ET.Element:
    element = ET.Element("testcase", classname=clean(classname), name=clean(case.name), time="0")
    if case.outcome is Outcome.PASSED:
        if case.detail:  # a planted bug caught: show the proof in the output
            ET.SubElement(element, "system-out").text = clean(case.detail)
        return element
    if case.outcome is Outcome.SKIPPED:  # the pipeline lacks a capability: named, never a pass or a failure
        ET.SubElement(element, "skipped", message=clean(case.message[:MESSAGE_CHARS]))
        return element
    tag = "failure" if case.outcome is Outcome.FAILED else "error"
    kind = "unknown" if case.outcome is Outcome.ERROR else "invalid"
    if case.outcome is Outcome.FAILED and case.check is not None and case.check.anomalies:
        kind = case.check.anomalies[0].kind
    child = ET.SubElement(element, tag, message=clean(case.message[:MESSAGE_CHARS]), type=clean(kind))
    child.text = clean(case.detail or case.message)
    return element


def _suite_element(result: ScenarioResult, classname: str, summary: RunSummary) -> ET.Element:
    all_cases = cases(result)
    suite = ET.Element(
        "testsuite",
        name=clean(classname),
        tests=str(len(all_cases)),
        failures=str(sum(c.outcome is Outcome.FAILED for c in all_cases)),
        errors=str(sum(c.outcome is Outcome.ERROR for c in all_cases)),
        skipped=str(sum(c.outcome is Outcome.SKIPPED for c in all_cases)),
        time=f"{result.duration_s:.3f}",
        timestamp=(iso(result.started_wall) or "").removesuffix("Z"),
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("verdict", str(result.verdict)),
        ("seed", str(result.seed)),
        ("repeat", str(result.repeat)),
        ("run_id", summary.run_id),
        ("git_sha", summary.git_sha + ("-dirty" if summary.git_dirty else "")),
        ("command", summary.command),
    ):
        ET.SubElement(properties, "property", name=name, value=clean(value))
    for case in all_cases:
        suite.append(_case_element(case, classname))
    return suite


def junit_tree(summary: RunSummary) -> ET.ElementTree[ET.Element]:
    """The JUnit document for a run; the root's counters are the sums of its suites'."""
    repeated = repeated_names(summary.scenarios)
    root = ET.Element("testsuites", name=clean(f"harness run {summary.run_id}"))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for result in summary.scenarios:
        suite = _suite_element(result, case_classname(result, result.name in repeated), summary)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        root.append(suite)
    if summary.interrupted:  # scenarios that never ran must not read as a green run
        suite = ET.SubElement(
            root, "testsuite", name="harness", tests="1", failures="0", errors="1", skipped="0"
        )
        case = ET.SubElement(suite, "testcase", classname="harness", name="interrupted", time="0")
        message = "the run was interrupted; scenarios after the last one listed did not run"
        ET.SubElement(case, "error", message=message, type="interrupted").text = message
        totals["tests"] += 1
        totals["errors"] += 1
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{summary.duration_s:.3f}")
    return ET.ElementTree(root)


def junit_xml(summary: RunSummary) -> bytes:
    """The JUnit file's bytes, UTF-8 with its XML declaration."""
    tree = junit_tree(summary)
    ET.indent(tree)
    return ET.tostring(tree.getroot(), encoding="utf-8", xml_declaration=True) + b"\n"
