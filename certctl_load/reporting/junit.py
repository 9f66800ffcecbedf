"""The verdict as JUnit XML for CI: one testsuite per run, one testcase per threshold."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from certctl_load.k6.thresholds import ThresholdResult
from certctl_load.model.scenario import Scenario
from certctl_load.reporting.files import write_atomically
from certctl_load.reporting.verdict_table import format_measured

NO_REQUEST_CASE = "requests sent"
NO_REQUEST_MESSAGE = "no heartbeat was sent: the run cannot pass"
# Characters XML 1.0 cannot carry even escaped; they become U+FFFD.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def junit_path(results_dir: Path, scenario: Scenario) -> Path:
    """``results/junit-agent-storm.xml``, named like the summaries."""
    return results_dir / f"junit-{scenario.file_stem}.xml"


def xml_text(value: str) -> str:
    """``value`` with the characters XML cannot carry replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", value)


def describe(result: ThresholdResult) -> str:
    """The measured value against the limit, e.g. ``p(95)=512.300ms, limit <500``."""
    threshold = result.threshold
    expression = threshold.expression
    measured = (
        f"{expression.method_text()}={format_measured(result)}, limit {expression.op}{expression.value:g}"
    )
    if threshold.window_s is not None and result.worst_start_s is not None:
        start = result.worst_start_s
        measured += f", worst window {start}s-{start + threshold.window_s}s"
    return measured


def render_junit(
    scenario_name: str,
    results: Sequence[ThresholdResult],
    *,
    duration_s: float,
    requests: int,
    inconclusive: str | None = None,
) -> str:
    """The JUnit document; a run without any request gets one more, failing, testcase. When the
    verdict is ``inconclusive`` (the load generator was saturated: the line says so), a crossed
    threshold is an error, not a failure: the measurement, not the server, failed."""
    suite_name = f"certctl-load {scenario_name}"
    classname = f"certctl-load.{scenario_name}"
    cases: list[tuple[str, str, str | None]] = []  # (name, what was measured, failure message)
    for result in results:
        threshold = result.threshold
        name = f"{threshold.metric_key} {threshold.label.strip()}"
        measured = describe(result)
        cases.append((name, measured, None if result.ok else measured))
    if requests == 0:
        cases.append((NO_REQUEST_CASE, "0 requests", NO_REQUEST_MESSAGE))

    failed = sum(1 for _, _, failure in cases if failure is not None)
    failures, errors = (0, failed) if inconclusive else (failed, 0)
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": str(errors), "skipped": "0"}
    time_text = f"{duration_s:.3f}"
    root = ET.Element("testsuites", {"name": "certctl-load", **counts, "time": time_text})
    suite = ET.SubElement(root, "testsuite", {"name": xml_text(suite_name), **counts, "time": time_text})
    for name, measured, failure in cases:
        case = ET.SubElement(suite, "testcase", {"classname": xml_text(classname), "name": xml_text(name)})
        if failure is not None and inconclusive:
            element = ET.SubElement(case, "error", {"message": xml_text(failure), "type": "inconclusive"})
            element.text = xml_text(f"{name}: {failure}; {inconclusive}")
        elif failure is not None:
            element = ET.SubElement(case, "failure", {"message": xml_text(failure), "type": "threshold"})
            element.text = xml_text(f"{name}: {failure}")
        ET.SubElement(case, "system-out").text = xml_text(measured)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(
    path: Path,
    scenario_name: str,
    results: Sequence[ThresholdResult],
    *,
    duration_s: float,
    requests: int,
    inconclusive: str | None = None,
) -> None:
    """Write :func:`render_junit`'s document to ``path`` atomically."""
    document = render_junit(
        scenario_name, results, duration_s=duration_s, requests=requests, inconclusive=inconclusive
    )
    write_atomically(path, document)
