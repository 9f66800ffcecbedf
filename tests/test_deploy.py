"""deploy/: the compose file through real validators and its wiring, the image's Dockerfile and the
install it makes, the TLS bootstrap script, and the CI workflow. No Docker engine is needed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
WORKFLOW = ROOT / ".github" / "workflows" / "loadtest.yml"
RUN_COMMAND = "--exit-code-from master master worker"
BAD_CONDITION = ("condition: service_completed_successfully", "condition: service_done")


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def broken_copy(tmp_path: Path) -> Path:
    """The compose file with an invalid depends_on condition, beside a copy of what it mounts."""
    shutil.copy(DEPLOY / "tls-bootstrap.sh", tmp_path / "tls-bootstrap.sh")
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(COMPOSE_FILE.read_text(encoding="utf-8").replace(*BAD_CONDITION), encoding="utf-8")
    return bad


# --- the compose file through real validators -------------------------------------------------


def compose_cli(kind: str) -> list[str] | None:
    """The command of Compose v1 (Debian's docker-compose 1.29) or v2 (the docker CLI plugin), if present."""
    candidates = {"v1": ["docker-compose"], "v2": ["docker", "compose"]}[kind]
    if shutil.which(candidates[0]) is None:
        return None
    version = subprocess.run([*candidates, "version", "--short"], capture_output=True, text=True)
    wanted = "1." if kind == "v1" else "2."
    if version.returncode != 0 or not version.stdout.strip().lstrip("v").startswith(wanted):
        return None
    return candidates


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["v1", "v2"])
def test_compose_config_accepts_the_file_and_rejects_a_broken_one(kind, tmp_path):
    cli = compose_cli(kind)
    if cli is None:
        reason = "Debian's docker-compose (1.29)" if kind == "v1" else "the docker compose v2 plugin"
        pytest.skip(f"{reason} is not installed")
    # Compose v1 requires every build context to exist: stand in for the certctl checkout.
    env = {**os.environ, "CERTCTL_SRC": str(tmp_path)}

    def config(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli, "-f", str(path), "config", "-q"], capture_output=True, text=True, env=env
        )

    good = config(COMPOSE_FILE)
    assert good.returncode == 0, good.stderr
    bad = config(broken_copy(tmp_path))
    assert bad.returncode != 0
    assert "condition" in bad.stderr, bad.stderr


def check_jsonschema(schema: str, document: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("check_jsonschema", reason="check-jsonschema (the test extra) is not installed")
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(document)],
        capture_output=True,
        text=True,
    )


@pytest.mark.e2e
def test_the_compose_specification_schema_accepts_the_file_and_rejects_a_broken_one(tmp_path):
    good = check_jsonschema("vendor.compose-spec", COMPOSE_FILE)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = check_jsonschema("vendor.compose-spec", broken_copy(tmp_path))
    assert bad.returncode == 1
    assert "service_done" in bad.stdout


# --- the compose file's wiring ----------------------------------------------------------------


def test_start_order_follows_readiness():
    services = compose()["services"]
    assert set(services) == {"tls-bootstrap", "postgres", "certctl-server", "seed", "master", "worker"}
    depends = {name: service.get("depends_on", {}) for name, service in services.items()}
    assert depends == {
        "tls-bootstrap": {},
        "postgres": {},
        "certctl-server": {
            "tls-bootstrap": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
        },
        "seed": {"certctl-server": {"condition": "service_healthy"}},
        "master": {"seed": {"condition": "service_completed_successfully"}},
        "worker": {"master": {"condition": "service_started"}},
    }
    for dependencies in depends.values():
        for name, dependency in dependencies.items():
            if dependency["condition"] == "service_healthy":
                assert "healthcheck" in services[name], f"{name} is waited on healthy but has no healthcheck"
            if dependency["condition"] == "service_completed_successfully":
                assert services[name].get("restart") == "no", f"{name} is a one-shot: restart must be 'no'"


def test_postgres_and_certctl_server_as_the_k6_stack_ran_them_without_the_rate_limiter():
    services = compose()["services"]
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:16-alpine"
    assert postgres["environment"]["POSTGRES_DB"] == postgres["environment"]["POSTGRES_USER"] == "certctl"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])

    server = services["certctl-server"]
    assert server["image"] == "${CERTCTL_IMAGE:-certctl-server:loadtest}"
    assert server["build"]["context"] == "${CERTCTL_SRC:-../../certctl}"
    env = server["environment"]
    assert env["CERTCTL_RATE_LIMIT_ENABLED"] == "false"
    assert env["CERTCTL_AUTH_TYPE"] == "api-key"
    assert env["CERTCTL_AUTH_SECRET"] == "${CERTCTL_TOKEN:-load-test-token}"
    assert env["CERTCTL_DATABASE_URL"].startswith("postgres://certctl:")
    assert env["CERTCTL_DATABASE_URL"].endswith("@postgres:5432/certctl?sslmode=disable")
    check = server["healthcheck"]["test"]
    assert check[0] == "CMD" and "-fsk" in check and check[-1] == "https://localhost:8443/ready"


def volume_targets(service: dict) -> dict[str, str]:
    """Volume source to the path it is mounted at."""
    return {entry.split(":")[0]: entry.split(":")[1] for entry in service.get("volumes", [])}


def test_the_server_reads_the_certificate_the_bootstrap_writes():
    services = compose()["services"]
    bootstrap, server = services["tls-bootstrap"], services["certctl-server"]
    assert "certs" in compose()["volumes"]
    written_to = volume_targets(bootstrap)["certs"]
    assert bootstrap["command"][-1].endswith(f"sh /tls-bootstrap.sh {written_to}")
    assert volume_targets(bootstrap)["./tls-bootstrap.sh"] == "/tls-bootstrap.sh"
    read_from = volume_targets(server)["certs"]
    env = server["environment"]
    assert env["CERTCTL_SERVER_TLS_CERT_PATH"] == f"{read_from}/server.crt"
    assert env["CERTCTL_SERVER_TLS_KEY_PATH"] == f"{read_from}/server.key"


def k6_env_names_the_harness_reads() -> set[str]:
    """Every CERTCTL_*/K6_* variable certctl_load/model/config.py looks up."""
    source = (ROOT / "certctl_load" / "model" / "config.py").read_text(encoding="utf-8")
    return set(re.findall(r"environ(?:\.get\(|\[|, )\"((?:CERTCTL|K6)_[A-Z0-9_]+)\"", source))


def test_seed_master_and_workers_run_the_harness_image_with_everything_it_reads():
    services = compose()["services"]
    seed, master, worker = services["seed"], services["master"], services["worker"]
    assert seed["image"] == master["image"] == worker["image"] == "certctl-load:local"
    assert (
        seed["build"]
        == master["build"]
        == worker["build"]
        == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    )

    assert seed["entrypoint"] == ["certctl-load"]
    assert seed["command"] == ["seed", "--fleet-size", "${K6_AGENT_FLEET:-5000}"]
    assert (
        seed["environment"]["CERTCTL_DATABASE_URL"]
        == services["certctl-server"]["environment"]["CERTCTL_DATABASE_URL"]
    )

    read = k6_env_names_the_harness_reads()
    assert {"CERTCTL_BASE", "CERTCTL_TOKEN", "K6_AGENT_FLEET", "K6_AGENT_RATE"} <= read
    # CERTCTL_CA_BUNDLE stays unset: like the k6 stack, the storm skips certificate verification.
    wanted = (read - {"CERTCTL_CA_BUNDLE"}) | {"LOCUST_RUN_TIME", "LOCUST_RESULTS_DIR"}
    for service in (master, worker):
        env = service["environment"]
        assert wanted <= set(env), sorted(wanted - set(env))
        assert env["CERTCTL_BASE"] == "https://certctl-server:8443"
        assert env["CERTCTL_TOKEN"] == "${CERTCTL_TOKEN:-load-test-token}"
        assert env["K6_AGENT_FLEET"] == "${K6_AGENT_FLEET:-5000}"
        assert env["K6_INSECURE_SKIP_TLS_VERIFY"] == "true"
        assert env["LOCUST_RUN_TIME"] == "${LOCUST_RUN_TIME:-5m}"
        assert env["LOCUST_RESULTS_DIR"] == "/results"

    assert master["command"][:2] == ["--master", "--headless"]
    assert "--expect-workers=${WORKERS:-2}" in master["command"] and "--insecure" in master["command"]
    assert volume_targets(master)["../results"] == "/results"
    assert worker["command"] == ["--worker", "--master-host", "master"]
    assert "container_name" not in worker and "ports" not in worker, "--scale worker=N needs both unset"


def test_the_run_command_is_documented_where_the_stack_is():
    for document in (COMPOSE_FILE, DEPLOY / "README.md"):
        text = " ".join(document.read_text(encoding="utf-8").replace("\\\n", " ").split())
        assert RUN_COMMAND in text, f"{document.name} does not show `up ... {RUN_COMMAND}`"


# --- the image ----------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical, pending = [], ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        logical.append(pending)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def test_the_base_image_is_the_locust_that_pyproject_pins():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (pin,) = [dep for dep in pyproject["project"]["dependencies"] if re.match(r"locust\s*==", dep)]
    version = pin.split("==")[1].strip()
    bases = [args for instruction, args in dockerfile_instructions() if instruction == "FROM"]
    assert bases == [f"locustio/locust:{version}"]


def test_the_entry_point_is_the_installed_package_locustfile_and_results_go_to_results():
    instructions = dockerfile_instructions()
    (entrypoint,) = [json.loads(args) for instruction, args in instructions if instruction == "ENTRYPOINT"]
    assert entrypoint == ["locust", "-f", "/opt/certctl-load/locustfile.py"]
    run = " ".join(args for instruction, args in instructions if instruction == "RUN")
    assert "pip install --no-cache-dir /tmp/certctl-load-src" in run
    assert re.search(r"ln -s \"\$\(python -c '[^']*certctl_load\.__file__[^']*'\)\"\s+/opt/certctl-load", run)
    assert "mkdir -p /results" in run
    assert ("ENV", "LOCUST_RESULTS_DIR=/results") in instructions
    assert instructions[-1] == ("ENTRYPOINT", json.dumps(entrypoint))
    assert ("USER", "locust") in instructions


def docker_context(destination: Path) -> None:
    """Copy the build context of deploy/Dockerfile as .dockerignore filters it.

    Only the forms the file uses are understood: ``*``, then ``!top-level-name`` and ``**/pattern``.
    """
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "*", ".dockerignore must start by excluding everything"
    included = [line[1:] for line in lines[1:] if line.startswith("!")]
    excluded = [line[3:] for line in lines[1:] if line.startswith("**/")]
    assert len(included) + len(excluded) == len(lines) - 1, "a .dockerignore form this test cannot emulate"
    assert all("/" not in name and "*" not in name for name in included)
    destination.mkdir()
    for name in included:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns(*excluded))
        elif source.is_file():
            shutil.copy2(source, destination / name)


@pytest.mark.e2e
def test_the_image_install_ships_the_locustfile_scenarios_seed_sql_and_cli(tmp_path):
    """What `pip install .` does in the Dockerfile, from the same context, without an engine."""
    context, wheels, site = tmp_path / "context", tmp_path / "wheels", tmp_path / "site"
    docker_context(context)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(context)], check=True)
    (wheel,) = wheels.glob("certctl_load-*.whl")
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)], check=True
    )
    link = tmp_path / "opt-certctl-load"  # the Dockerfile's /opt/certctl-load
    link.symlink_to(site / "certctl_load")
    env = {**os.environ, "PYTHONPATH": str(site)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=tmp_path)

    probe = run(
        "-c",
        "import certctl_load, json; from importlib import resources;"
        "from certctl_load.model.scenario import default_scenario_path, load_scenario;"
        "p = default_scenario_path();"
        "print(json.dumps([certctl_load.__file__, str(p), load_scenario(p).name,"
        " sorted(f.name for f in resources.files('certctl_load.seed_sql').iterdir())]))",
    )
    assert probe.returncode == 0, probe.stderr
    package_file, scenario_path, scenario_name, seed_files = json.loads(probe.stdout)
    assert Path(package_file).is_relative_to(site)
    assert Path(scenario_path) == site / "certctl_load" / "scenarios" / "agent_storm.yaml"
    assert scenario_name == "agent_storm"
    assert "02_agent_fleet.sql" in seed_files
    assert (link / "scenarios" / "agent_storm.yaml").is_file()

    # --list imports the locustfile (and so the whole harness) and names its User classes.
    users = run("-m", "locust", "-f", str(link / "locustfile.py"), "--list")
    assert users.returncode == 0, users.stderr
    assert "CertctlAgent" in users.stdout

    seed_help = run("-m", "certctl_load.cli", "seed", "--help")
    assert seed_help.returncode == 0, seed_help.stderr[-2000:]
    assert "--fleet-size" in seed_help.stdout


# --- the TLS bootstrap ------------------------------------------------------------------------


@pytest.mark.e2e
def test_tls_bootstrap_makes_a_p256_certificate_for_certctl_server_once(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    certs = tmp_path / "certs"

    def bootstrap() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(DEPLOY / "tls-bootstrap.sh"), str(certs)], capture_output=True, text=True
        )

    first = bootstrap()
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in certs.iterdir()) == ["ca.crt", "server.crt", "server.key"]
    text = subprocess.run(
        ["openssl", "x509", "-in", str(certs / "server.crt"), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "NIST CURVE: P-256" in text
    assert "Subject: CN = certctl-server" in text
    assert "DNS:certctl-server" in text
    assert (certs / "ca.crt").read_bytes() == (certs / "server.crt").read_bytes()
    assert (certs / "server.key").stat().st_mode & 0o004, "the unprivileged server must read the key"

    before = {p.name: p.read_bytes() for p in certs.iterdir()}
    again = bootstrap()
    assert again.returncode == 0 and "kept" in again.stdout
    assert {p.name: p.read_bytes() for p in certs.iterdir()} == before


# --- the CI workflow ----------------------------------------------------------------------------


@pytest.mark.e2e
def test_the_workflow_matches_the_github_workflow_schema():
    for schema in ("vendor.github-workflows", "custom.github-workflows-require-timeout"):
        result = check_jsonschema(schema, WORKFLOW)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflow_runs_the_storm_on_demand_and_weekly_and_always_keeps_the_results():
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(triggers) == {"workflow_dispatch", "schedule"}
    assert set(triggers["workflow_dispatch"]["inputs"]) == {"fleet_size", "rate", "run_time"}
    (schedule,) = triggers["schedule"]
    minute, hour, day, month, weekday = schedule["cron"].split()
    assert (day, month) == ("*", "*") and weekday.isdigit(), "weekly: one day of the week"

    (job,) = workflow["jobs"].values()
    assert job["runs-on"].startswith("ubuntu")
    steps = job["steps"]
    python = next(step for step in steps if step.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"]["python-version"] == "3.11"
    runs = [step.get("run", "") for step in steps]
    assert any("pip install -e ." in run for run in runs)
    target = next(run for run in runs if "certctl-load target" in run)
    assert "--port 8080" in target and "--fleet-size" in target and "&" in target
    assert "http://127.0.0.1:8080/health" in target
    storm_index, storm = next((i, step) for i, step in enumerate(steps) if "locust " in step.get("run", ""))
    assert "if" not in storm, "the storm's exit code must fail the job"
    command = storm["run"]
    for needle in (
        "-f locustfile.py",
        "--headless",
        "--host http://127.0.0.1:8080",
        "--fleet-size",
        "--run-time",
    ):
        assert needle in command
    assert job["env"]["K6_AGENT_RATE"] == "${{ inputs.rate }}"

    upload_index, upload = next(
        (i, step)
        for i, step in enumerate(steps)
        if step.get("uses", "").startswith("actions/upload-artifact@")
    )
    assert upload_index > storm_index
    assert upload["if"] == "always()"
    assert upload["with"]["path"].rstrip("/") == "results"
