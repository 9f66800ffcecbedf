"""The JUnit report: read back with an XML parser, counts, failure texts, names that need escaping."""

import xml.etree.ElementTree as ET
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from certctl_load.errors import ConfigError
from certctl_load.k6.metrics import MetricStore
from certctl_load.k6.thresholds import evaluate, parse_thresholds
from certctl_load.model.scenario import default_scenario_path, load_scenario
from certctl_load.reporting.junit import junit_path, render_junit, write_junit

OK = {"scenario": "agent_storm", "name": "heartbeat", "status": "200", "expected_response": "true"}
K6_THRESHOLDS = {
    "http_req_duration{scenario:agent_storm}": ["p(99)<1000", "p(95)<500"],
    "http_req_failed{scenario:agent_storm}": ["rate<0.001"],
}


def judge(store, spec=K6_THRESHOLDS, duration_s=300.0):
    return evaluate(parse_thresholds(spec), store, duration_s)


def beats(durations_ms):
    store = MetricStore()
    for duration in durations_ms:
        store.add_trend("http_req_duration", duration, OK)
        store.add_rate("http_req_failed", False, OK)
    return store


def cases_of(document):
    root = ET.fromstring(document.encode("utf-8"))
    (suite,) = root.findall("testsuite")
    return root, suite, suite.findall("testcase")


def test_one_testcase_per_threshold_and_a_failure_with_value_and_limit():
    results = judge(beats([512.3] * 20))
    root, suite, cases = cases_of(render_junit("agent_storm", results, duration_s=300.0, requests=20))

    assert root.tag == "testsuites"
    assert suite.get("name") == "certctl-load agent_storm"
    for element in (root, suite):
        assert (element.get("tests"), element.get("failures"), element.get("errors")) == ("3", "1", "0")
        assert element.get("time") == "300.000"
    assert [case.get("name") for case in cases] == [
        "http_req_duration{scenario:agent_storm} p(99)<1000",
        "http_req_duration{scenario:agent_storm} p(95)<500",
        "http_req_failed{scenario:agent_storm} rate<0.001",
    ]
    assert {case.get("classname") for case in cases} == {"certctl-load.agent_storm"}
    failing = [case for case in cases if case.find("failure") is not None]
    assert [case.get("name") for case in failing] == ["http_req_duration{scenario:agent_storm} p(95)<500"]
    failure = failing[0].find("failure")
    assert failure.get("message") == "p(95)=512.300ms, limit <500"
    assert failure.text == "http_req_duration{scenario:agent_storm} p(95)<500: p(95)=512.300ms, limit <500"
    assert cases[0].find("failure") is None
    assert cases[0].findtext("system-out") == "p(99)=512.300ms, limit <1000"


def test_a_passing_run_has_no_failure():
    results = judge(beats([3.0, 4.0, 5.0]))
    root, _, cases = cases_of(render_junit("agent_storm", results, duration_s=12.5, requests=3))
    assert (root.get("tests"), root.get("failures"), root.get("time")) == ("3", "0", "12.500")
    assert all(case.find("failure") is None for case in cases)


def test_a_rate_without_samples_passes_and_a_run_without_requests_fails_once_more():
    results = judge(MetricStore(), {"http_req_failed{scenario:agent_storm}": ["rate<0.001"]})
    assert results[0].value is None and results[0].ok
    root, _, cases = cases_of(render_junit("agent_storm", results, duration_s=1.0, requests=0))

    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    rate_case, no_request_case = cases
    assert rate_case.find("failure") is None
    assert rate_case.findtext("system-out") == "rate=no samples, limit <0.001"
    assert no_request_case.get("name") == "requests sent"
    assert no_request_case.find("failure").get("message") == "no heartbeat was sent: the run cannot pass"


def test_counter_and_rate_failures_state_their_units():
    store = beats([1.0] * 3)
    store.add_counter("http_reqs", 3, OK)
    store.add_rate("http_req_failed", True, OK)
    spec = {"http_reqs": ["rate>1"], "http_req_failed": ["rate<0.1"]}
    _, _, cases = cases_of(render_junit("agent_storm", judge(store, spec, 10.0), duration_s=10.0, requests=3))
    assert [case.find("failure").get("message") for case in cases] == [
        "rate=0.3/s, limit >1",
        "rate=0.25, limit <0.1",
    ]


@given(st.text(min_size=1, max_size=20))
def test_any_tag_value_reads_back_as_valid_xml(value):
    try:
        thresholds = parse_thresholds({f"http_req_duration{{name:{value}}}": ["avg<=1"]})
    except ConfigError:
        return
    results = evaluate(thresholds, MetricStore(), 1.0)
    _, _, (case,) = cases_of(render_junit("agent_storm", results, duration_s=1.0, requests=1))
    name = case.get("name")
    expected = f"{thresholds[0].metric_key} avg<=1"
    assert len(name) == len(expected)
    assert all(got == want or got == "\ufffd" for got, want in zip(name, expected, strict=True))


def test_write_junit_names_the_file_like_the_summaries(tmp_path: Path):
    scenario = load_scenario(default_scenario_path())
    path = junit_path(tmp_path / "results", scenario)
    assert path == tmp_path / "results" / "junit-agent-storm.xml"

    results = evaluate(list(scenario.thresholds), beats([600.0]), 5.0)
    write_junit(path, scenario.name, results, duration_s=5.0, requests=1)

    assert sorted(p.name for p in path.parent.iterdir()) == ["junit-agent-storm.xml"]
    text = path.read_text(encoding="utf-8")
    assert text == render_junit("agent_storm", results, duration_s=5.0, requests=1)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')
    _, _, cases = cases_of(text)
    assert [case.find("failure") is not None for case in cases] == [False, True, False]
