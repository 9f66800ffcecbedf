"""The search as JUnit XML for CI, in the storm's style: one testcase for the result (a failure
when the start fleet fails, an error when the search was inconclusive or stopped), one per step
(a failing step is a measurement, not a failure; an inconclusive one is an error)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from certctl_load import exitcodes
from certctl_load.capacity.result import Found, SearchResult, step_line
from certctl_load.capacity.step import Verdict
from certctl_load.reporting.junit import xml_text

RESULT_CASE = "capacity search"


def render_capacity_junit(scenario_name: str, result: SearchResult) -> str:
    """The JUnit document of a search over ``scenario_name``'s fleet."""
    classname = f"certctl-load.capacity.{scenario_name}"
    cases: list[tuple[str, str, str | None, str]] = []  # (name, output, message, failure or error)
    if result.result is Found.START_FAILS:
        cases.append((RESULT_CASE, result.line, result.line, "failure"))
    elif result.exit_code != exitcodes.OK:
        cases.append((RESULT_CASE, result.line, result.line, "error"))
    else:
        cases.append((RESULT_CASE, result.line, None, ""))
    for step in result.steps:
        line = step_line(step)
        stopped = step.verdict in (Verdict.INCONCLUSIVE, Verdict.NOT_READY, Verdict.ERROR)
        cases.append((f"step {step.number}: {step.fleet} agents", line, line if stopped else None, "error"))
    failures = sum(1 for _, _, message, kind in cases if message and kind == "failure")
    errors = sum(1 for _, _, message, kind in cases if message and kind == "error")
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": str(errors), "skipped": "0"}
    root = ET.Element("testsuites", {"name": "certctl-load", **counts})
    suite = ET.SubElement(
        root, "testsuite", {"name": xml_text(f"certctl-load capacity {scenario_name}"), **counts}
    )
    for name, output, message, kind in cases:
        case = ET.SubElement(suite, "testcase", {"classname": xml_text(classname), "name": xml_text(name)})
        if message is not None:
            kind_type = "inconclusive" if result.result is Found.INCONCLUSIVE else "capacity"
            element = ET.SubElement(case, kind, {"message": xml_text(message), "type": kind_type})
            element.text = xml_text(message)
        ET.SubElement(case, "system-out").text = xml_text(output)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
