"""certctl_load.db.dsn: passwords never reach a message."""

from __future__ import annotations

from urllib.parse import quote

import psycopg
import pytest
from helpers import free_port
from hypothesis import given
from hypothesis import strategies as st
from pgcluster import PASSWORD

from certctl_load.db.dsn import ENV_VAR, connect, describe_error, mask_dsn, resolve_dsn
from certctl_load.errors import ConfigError, HarnessError


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        ("postgresql://certctl:pw@db:5432/certctl", "postgresql://certctl:***@db:5432/certctl"),
        (
            "postgres://u:p%40ss@h1:5432,h2:5433/d?sslmode=require",
            "postgres://u:***@h1:5432,h2:5433/d?sslmode=require",
        ),
        ("postgresql://u:p@ss@h/d", "postgresql://u:***@h/d"),
        ("postgresql://u@h/d?password=pw&sslmode=disable", "postgresql://u@h/d?password=***&sslmode=disable"),
        ("postgresql://u@h/d?sslpassword=pw", "postgresql://u@h/d?sslpassword=***"),
        ("postgresql://u@h:5432/d", "postgresql://u@h:5432/d"),
        ("postgresql:///certctl", "postgresql:///certctl"),
        ("host=db user=certctl password=pw dbname=d", "host=db user=certctl password=*** dbname=d"),
        ("host=db password = 'p w\\'x' dbname=d", "host=db password = *** dbname=d"),
        ("host=db PASSWORD=pw sslpassword=k", "host=db PASSWORD=*** sslpassword=***"),
        ("host=db user=certctl", "host=db user=certctl"),
        ("", ""),
    ],
)
def test_mask_dsn(dsn: str, masked: str) -> None:
    assert mask_dsn(dsn) == masked


passwords = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=4).filter(str.strip)


@given(passwords)
def test_url_passwords_never_show(password: str) -> None:
    dsn = f"postgresql://certctl:{quote(password, safe='')}@db:5432/certctl"
    assert mask_dsn(dsn) == "postgresql://certctl:***@db:5432/certctl"
    assert password not in describe_error(ValueError(f"echo {password} {dsn}"), dsn)


@given(passwords)
def test_key_value_passwords_never_show(password: str) -> None:
    quoted = "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"
    dsn = f"host=db password={quoted} dbname=certctl"
    assert mask_dsn(dsn) == "host=db password=*** dbname=certctl"
    assert password not in describe_error(ValueError(f"echo {password}"), dsn)


def test_resolve_dsn_prefers_the_command_line() -> None:
    assert resolve_dsn("host=a", {ENV_VAR: "host=b"}) == "host=a"
    assert resolve_dsn(None, {ENV_VAR: "host=b"}) == "host=b"
    with pytest.raises(ConfigError, match=f"pass --dsn or set {ENV_VAR}"):
        resolve_dsn(None, {})


def test_connect_failures_are_masked_one_liners() -> None:
    dsn = f"postgresql://certctl:{PASSWORD}@127.0.0.1:{free_port()}/certctl"
    with pytest.raises(HarnessError) as raised:
        connect(dsn)
    message = str(raised.value)
    assert PASSWORD not in message and "\n" not in message
    assert message.startswith(f"cannot connect to {mask_dsn(dsn)}: connection failed:")
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_malformed_dsn_errors_are_masked() -> None:
    dsn = f"host=127.0.0.1 password={PASSWORD} {PASSWORD}"
    with pytest.raises(HarnessError) as raised:
        connect(dsn)
    assert PASSWORD not in str(raised.value)
    assert isinstance(raised.value, HarnessError) and not isinstance(raised.value, psycopg.Error)
