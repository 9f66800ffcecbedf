"""Configuration precedence and the scenario file's validation."""

from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certctl_load.errors import ConfigError
from certctl_load.model.config import DEFAULT_HOST, resolve_config
from certctl_load.model.scenario import SCHEMA, default_scenario_path, load_scenario, parse_scenario


def options(**values):
    base = dict(
        scenario=None,
        fleet_size=None,
        heartbeat_interval=None,
        run_time=None,
        results_dir=None,
        insecure=False,
        ca_bundle=None,
        skip_preflight=False,
    )
    base.update(values)
    return SimpleNamespace(**base)


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_shipped_scenario_is_the_k6_storm():
    scenario = load_scenario(default_scenario_path())
    assert scenario.name == "agent_storm"
    assert scenario.fleet_size == 5000
    assert scenario.heartbeat_interval_s == 30.0
    assert scenario.duration_s == 300.0
    assert scenario.summary_trend_stats == ("avg", "min", "med", "p(95)", "p(99)", "max")
    assert {t.metric_key for t in scenario.thresholds} == {
        "http_req_duration{scenario:agent_storm}",
        "http_req_failed{scenario:agent_storm}",
    }


def test_defaults_come_from_the_scenario_and_the_k6_script():
    config = resolve_config(options(), {}, None)
    assert config.host == DEFAULT_HOST
    assert config.token == "load-test-token"
    assert (config.fleet_size, config.heartbeat_interval_s, config.duration_s) == (5000, 30.0, 300.0)
    assert config.insecure is False
    assert str(config.results_dir) == "results"
    assert abs(config.offered_rate - 166.67) < 0.01


def test_k6_environment_overrides_the_scenario():
    env = {
        "CERTCTL_BASE": "http://127.0.0.1:9",
        "CERTCTL_TOKEN": "t0k",
        "K6_AGENT_FLEET": "1000",
        "K6_AGENT_RATE": "200",
        "K6_INSECURE_SKIP_TLS_VERIFY": "true",
    }
    config = resolve_config(options(), env, None)
    assert config.host == "http://127.0.0.1:9"
    assert config.token == "t0k"
    assert config.fleet_size == 1000
    assert config.heartbeat_interval_s == 5.0
    assert config.insecure is True


def test_locust_options_override_the_k6_environment():
    env = {"CERTCTL_BASE": "http://127.0.0.1:9", "K6_AGENT_FLEET": "1000"}
    config = resolve_config(
        options(fleet_size="300", heartbeat_interval="6s", run_time=20), env, "http://127.0.0.1:8"
    )
    assert config.host == "http://127.0.0.1:8"
    assert (config.fleet_size, config.heartbeat_interval_s, config.duration_s) == (300, 6.0, 20.0)


def test_rate_and_interval_that_agree_are_accepted_and_conflicting_ones_rejected():
    env = {"K6_AGENT_FLEET": "1000", "K6_AGENT_RATE": "250"}
    assert resolve_config(options(heartbeat_interval="4"), env, None).heartbeat_interval_s == 4.0
    with pytest.raises(ConfigError, match=r"K6_AGENT_RATE='250'.*--heartbeat-interval='6s'"):
        resolve_config(options(heartbeat_interval="6s"), env, None)


def test_scenario_values_are_used_when_nothing_overrides_them(tmp_path):
    path = write(tmp_path, "name: small\nfleet_size: 12\nheartbeat_interval: 2s\nduration: 1m\n")
    config = resolve_config(options(scenario=path), {}, None)
    assert (config.scenario.name, config.fleet_size, config.heartbeat_interval_s, config.duration_s) == (
        "small",
        12,
        2.0,
        60.0,
    )
    assert config.scenario.file_stem == "small"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [unclosed\n", r"malformed YAML at line 2"),
        ("fleet_sise: 10\n", r"unknown key 'fleet_sise'"),
        ("fleet_size: 0\n", r"key 'fleet_size' has value 0"),
        ("fleet_size: ten\n", r"key 'fleet_size' has value 'ten'"),
        ("fleet_size: true\n", r"key 'fleet_size' has value True"),
        ("heartbeat_interval: -5s\n", r"key 'heartbeat_interval' has value '-5s'"),
        ("duration: soon\n", r"key 'duration' has value 'soon'"),
        ("connection: http2\n", r"key 'connection' has value 'http2'"),
        ("- a\n- b\n", r"must be a mapping"),
        ('thresholds:\n  "http_req_duration": ["p(95)<<500"]\n', r"p\(95\)<<500"),
        ('thresholds:\n  "http_req_latency": ["p(95)<500"]\n', r"http_req_latency"),
        ('thresholds:\n  "http_req_failed": ["p(95)<5"]\n', r"p\(95\)<5"),
    ],
)
def test_bad_scenarios_are_one_line_config_errors_naming_the_value(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_scenario(path)
    assert "\n" not in str(caught.value)
    assert path in str(caught.value)


@pytest.mark.parametrize(
    ("opts", "env", "message"),
    [
        (dict(fleet_size="0"), {}, r"--fleet-size='0'"),
        (dict(heartbeat_interval="fast"), {}, r"--heartbeat-interval='fast'"),
        ({}, {"K6_AGENT_FLEET": "many"}, r"K6_AGENT_FLEET='many'"),
        ({}, {"K6_AGENT_RATE": "-3"}, r"K6_AGENT_RATE='-3'"),
        ({}, {"K6_INSECURE_SKIP_TLS_VERIFY": "maybe"}, r"K6_INSECURE_SKIP_TLS_VERIFY='maybe'"),
        ({}, {"CERTCTL_BASE": "ftp://x"}, r"'ftp://x'"),
        (dict(scenario="/nonexistent/x.yaml"), {}, r"/nonexistent/x.yaml"),
    ],
)
def test_bad_overrides_are_config_errors_naming_the_value(opts, env, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(options(**opts), env, None)


def test_the_token_never_appears_in_the_config_repr():
    config = resolve_config(options(), {"CERTCTL_TOKEN": "s3cr3t-token"}, None)
    assert "s3cr3t-token" not in repr(config)


yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=True), st.text(max_size=20)
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
scenario_keys = st.sampled_from([*SCHEMA, "unknown_key"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(scenario_keys, yaml_values, max_size=6))
def test_fuzzed_scenarios_either_load_or_fail_with_one_config_error(document):
    try:
        scenario = parse_scenario(document, "fuzz.yaml")
    except ConfigError as error:
        message = str(error)
        assert message.startswith("scenario fuzz.yaml:") and "\n" not in message
    else:
        assert scenario.fleet_size >= 1 and scenario.heartbeat_interval_s > 0 and scenario.duration_s > 0


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_fuzzed_yaml_text_never_crashes_the_loader(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "s.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_scenario(path)
    except ConfigError as error:
        assert "\n" not in str(error)


def test_source_addresses_are_ip_addresses():
    assert resolve_config(options(source_addresses="127.0.0.2, 127.0.0.3"), {}, None).source_addresses == (
        "127.0.0.2",
        "127.0.0.3",
    )
    with pytest.raises(ConfigError, match="'localhost' is not an IP address"):
        resolve_config(options(source_addresses="127.0.0.2,localhost"), {}, None)


def test_blank_options_from_the_web_form_count_as_not_given():
    config = resolve_config(options(fleet_size="", heartbeat_interval=" "), {}, None)
    assert (config.fleet_size, config.heartbeat_interval_s) == (5000, 30.0)


def test_warmup_is_a_k6_duration_shorter_than_the_run_time():
    assert resolve_config(options(run_time="30s", warmup="10s"), {}, None).warmup_s == 10.0
    assert resolve_config(options(run_time="30s"), {}, None).warmup_s == 0.0
    bad_values = [("30s", "leaves nothing to judge"), ("-1s", "must not be negative"), ("ten", "is not a")]
    for bad, why in bad_values:
        with pytest.raises(ConfigError, match=why) as raised:
            resolve_config(options(run_time="30s", warmup=bad), {}, None)
        assert repr(bad) in str(raised.value)
