"""Database DSNs: where one comes from, how it shows in messages (password masked), connecting.

Every message that names a database goes through :func:`mask_dsn`; every database error
text goes through :func:`describe_error`, which also removes the password should libpq
have echoed part of the DSN (it does for some malformed ones).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import psycopg

from certctl_load.errors import ConfigError, HarnessError

ENV_VAR = "CERTCTL_DATABASE_URL"
MASK = "***"

_URL = re.compile(r"^(?P<scheme>postgres(?:ql)?://)(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
_URL_QUERY_PASSWORD = re.compile(r"(?P<key>[?&](?:ssl)?password=)(?P<value>[^&#]*)", re.IGNORECASE)
# A value runs to the next ``key=`` (so that an unquoted password with a space is masked whole).
_KV_PASSWORD = re.compile(
    r"(?P<key>\b(?:ssl)?password\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'|.*?)(?=\s+\w+\s*=|\s*$)",
    re.IGNORECASE | re.DOTALL,
)
_MIN_ECHOED_PIECE = 4


def resolve_dsn(given: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The DSN given on the command line, else ``CERTCTL_DATABASE_URL``; ConfigError when neither is set."""
    dsn = given or environ.get(ENV_VAR, "")
    if not dsn.strip():
        raise ConfigError(f"no database given: pass --dsn or set {ENV_VAR}")
    return dsn


def mask_dsn(dsn: str) -> str:
    """``dsn`` with every password replaced by ``***``, in URL form (``postgresql://user:pw@host/db``,
    ``?password=``) and key=value form (``password=pw``, quoted or not). Never raises."""
    url = _URL.match(dsn)
    if url is None:
        return _KV_PASSWORD.sub(lambda m: m["key"] + MASK, dsn)
    rest = url["rest"]
    at = rest.rfind("@")
    if at >= 0:
        user, colon, _password = rest[:at].partition(":")
        if colon:
            rest = f"{user}:{MASK}{rest[at:]}"
    return url["scheme"] + _URL_QUERY_PASSWORD.sub(lambda m: m["key"] + MASK, rest)


def _passwords(dsn: str) -> set[str]:
    """The password text(s) in ``dsn``, raw and decoded, as they might be echoed by libpq."""
    found: list[str] = []
    url = _URL.match(dsn)
    if url is not None:
        rest = url["rest"]
        at = rest.rfind("@")
        if at >= 0 and ":" in rest[:at]:
            found.append(rest[:at].partition(":")[2])
        found += [m["value"] for m in _URL_QUERY_PASSWORD.finditer(rest)]
        found += [unquote(value) for value in found]
    else:
        for match in _KV_PASSWORD.finditer(dsn):
            value = match["value"]
            found.append(value)
            if len(value) >= 2 and value.startswith("'") and value.endswith("'"):
                found.append(re.sub(r"\\(.)", r"\1", value[1:-1]))
    # libpq echoes single words of a malformed DSN: scrub each longer word of a password too.
    found += [piece for value in found for piece in value.split() if len(piece) >= _MIN_ECHOED_PIECE]
    return {value for value in found if value}


def describe_error(error: BaseException, dsn: str) -> str:
    """A database error as one line, without the DSN's password."""
    text = " ".join(str(error).split()) or type(error).__name__
    for password in sorted(_passwords(dsn), key=len, reverse=True):
        text = text.replace(password, MASK)
    return text


def connect(dsn: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """``psycopg.connect``; a failure becomes a HarnessError naming the masked DSN and the reason."""
    try:
        return psycopg.connect(dsn, **kwargs)
    except psycopg.Error as error:
        raise HarnessError(f"cannot connect to {mask_dsn(dsn)}: {describe_error(error, dsn)}") from None
