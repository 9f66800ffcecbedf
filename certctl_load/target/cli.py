"""``certctl-load target``: serve certctl's agent heartbeat API, with calibrated delays and faults.

Prints exactly one line to stdout once listening (``certctl-load target listening on URL``)
and runs until SIGINT or SIGTERM, then exits 0.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import resource
import shutil
import signal
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import gevent
import gevent.event
from gevent import ssl

from certctl_load import exitcodes
from certctl_load.errors import ConfigError, HarnessError
from certctl_load.model.fleet import DEFAULT_ID_PREFIX, DEFAULT_TOKEN
from certctl_load.model.values import for_argparse, fraction, real_number, whole_number
from certctl_load.target import tls
from certctl_load.target.app import ApiKeys, CertctlApp
from certctl_load.target.capacity import CapacityQueue
from certctl_load.target.faults import EvenSpread, HeartbeatTiming, StallWindow
from certctl_load.target.ratelimit import RateLimiter
from certctl_load.target.request_log import RequestLog
from certctl_load.target.server import HttpServer
from certctl_load.target.store import AgentStore

HELP = "Serve certctl's agent heartbeat API (the reference target), with optional delays and faults"
AUTH_SECRET_ENV = "CERTCTL_AUTH_SECRET"
DATABASE_URL_ENV = "CERTCTL_DATABASE_URL"  # as certctl_load.db.dsn.ENV_VAR (not imported: it loads psycopg)
DEFAULT_RATE_BURST = 100
STOP_GRACE_S = 2.0
_WILDCARDS = ("", "0.0.0.0", "::")

log = logging.getLogger("certctl_load.target")


def _non_negative_count(text: str) -> int:
    return whole_number(text, minimum=0)


def _positive_number(text: str) -> float:
    return real_number(text, positive=True)


_fraction = for_argparse(fraction)
_non_negative = for_argparse(real_number)
_positive = for_argparse(_positive_number)
_count = for_argparse(_non_negative_count)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    listen = parser.add_argument_group("listening")
    listen.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    listen.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    listen.add_argument(
        "--idle-timeout",
        type=_positive,
        default=60.0,
        metavar="S",
        help="close keep-alive connections idle this long (default 60, as certctl)",
    )
    listen.add_argument(
        "--reuse-port",
        action="store_true",
        help="let several target processes listen on one port, the kernel spreading connections "
        "over them (SO_REUSEPORT): each brings its own open-files limit",
    )
    listen.add_argument("--request-log", metavar="FILE", help="write one JSON line per request to FILE")
    listen.add_argument(
        "--token",
        metavar="KEYS",
        help=f"comma-separated API keys (default: ${AUTH_SECRET_ENV}, else {DEFAULT_TOKEN})",
    )

    fleet = parser.add_argument_group("fleet")
    fleet.add_argument("--fleet-size", type=_count, default=5000, help="agents seeded (default 5000)")
    fleet.add_argument(
        "--id-prefix", default=DEFAULT_ID_PREFIX, help=f"agent id prefix (default {DEFAULT_ID_PREFIX})"
    )
    fleet.add_argument("--retired", type=_count, default=0, metavar="K", help="retire the last K agents")
    fleet.add_argument(
        "--sqlite-path", metavar="FILE", help="keep the SQLite fleet in FILE (default: in memory)"
    )
    fleet.add_argument(
        "--dsn", help=f"use this PostgreSQL database instead of SQLite (also ${DATABASE_URL_ENV})"
    )

    timing = parser.add_argument_group("calibration and faults")
    timing.add_argument(
        "--latency-ms",
        type=_non_negative,
        default=0.0,
        metavar="MS",
        help="every heartbeat takes at least MS milliseconds on the server",
    )
    timing.add_argument(
        "--slow-fraction",
        type=_fraction,
        default=Fraction(0),
        metavar="F",
        help="an evenly spread fraction F of heartbeats takes --slow-ms instead",
    )
    timing.add_argument("--slow-ms", type=_non_negative, metavar="MS", help="duration of a slow heartbeat")
    timing.add_argument(
        "--error-fraction",
        type=_fraction,
        default=Fraction(0),
        metavar="F",
        help="an evenly spread fraction F of heartbeats answers certctl's 500",
    )
    timing.add_argument(
        "--stall-at",
        type=_non_negative,
        metavar="S",
        help="hold every response from S seconds after start ...",
    )
    timing.add_argument("--stall-for", type=_positive, metavar="D", help="... for D seconds")
    timing.add_argument(
        "--rate-limit",
        type=_positive,
        metavar="RPS",
        help="emulate certctl's rate limiter: RPS per client IP (default off)",
    )
    timing.add_argument(
        "--capacity",
        type=_positive,
        metavar="R",
        help="serve heartbeats one at a time, R per second at most, first in first out with no "
        "burst: heartbeat n is answered at max(its arrival, the previous one's answer) + 1/R, so past "
        "R per second latency grows without bound (a server bound by its database; unlike "
        "--rate-limit, nothing is refused)",
    )
    timing.add_argument(
        "--rate-burst", type=int, metavar="B", help=f"its burst (default {DEFAULT_RATE_BURST})"
    )

    https = parser.add_argument_group("TLS")
    https.add_argument(
        "--tls", action="store_true", help="serve HTTPS with a new self-signed P-256 certificate"
    )
    https.add_argument(
        "--tls-ca-out", metavar="PATH", help="with --tls: write the CA certificate (PEM) to PATH"
    )
    https.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (PEM) ...")
    https.add_argument("--tls-key", metavar="FILE", help="... and this private key (PEM)")


def _check_options(args: argparse.Namespace) -> None:
    pairs = [("--slow-fraction", "--slow-ms", args.slow_fraction > 0, args.slow_ms is not None),
             ("--stall-at", "--stall-for", args.stall_at is not None, args.stall_for is not None),
             ("--tls-cert", "--tls-key", args.tls_cert is not None, args.tls_key is not None)]  # fmt: skip
    for first, second, has_first, has_second in pairs:
        if has_first != has_second:
            raise ConfigError(f"{first} and {second} go together")
    if args.tls and args.tls_cert:
        raise ConfigError("--tls makes a certificate: do not also give --tls-cert")
    if args.tls_ca_out and not args.tls:
        raise ConfigError("--tls-ca-out needs --tls")
    if args.rate_burst is not None and (args.rate_limit is None or args.rate_burst < 1):
        raise ConfigError("--rate-burst needs --rate-limit and must be 1 or more")
    if args.retired > args.fleet_size:
        raise ConfigError(f"--retired {args.retired} is more than the fleet size {args.fleet_size}")
    if args.dsn and args.sqlite_path:
        raise ConfigError("--dsn and --sqlite-path are two different fleets: give one")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} is not a port number")


def _api_keys(given: str | None) -> ApiKeys:
    secret = given if given is not None else os.environ.get(AUTH_SECRET_ENV) or DEFAULT_TOKEN
    keys = [key.strip() for key in secret.split(",") if key.strip()]
    if not keys:
        raise ConfigError(f"no API key: --token or ${AUTH_SECRET_ENV} must name at least one")
    return ApiKeys(keys)


def _open_store(args: argparse.Namespace) -> AgentStore:
    dsn = args.dsn or os.environ.get(DATABASE_URL_ENV)
    if dsn and not args.sqlite_path:
        from certctl_load.target.pg_store import PgAgentStore

        return PgAgentStore(dsn, fleet_size=args.fleet_size, retired=args.retired, prefix=args.id_prefix)
    from certctl_load.target.sqlite_store import SqliteAgentStore

    return SqliteAgentStore(
        args.sqlite_path, fleet_size=args.fleet_size, retired=args.retired, prefix=args.id_prefix
    )


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if args.tls_cert:
        return tls.server_context(Path(args.tls_cert), Path(args.tls_key))
    if not args.tls:
        return None
    names: tuple[str, ...] = tls.DEFAULT_NAMES
    if args.host not in names and args.host not in _WILDCARDS:
        names += (args.host,)
    with tempfile.TemporaryDirectory(prefix="certctl-load-tls-") as workdir:
        files = tls.write_self_signed(Path(workdir), names)
        context = tls.server_context(files.cert, files.key)
        if args.tls_ca_out:
            try:
                shutil.copyfile(files.ca, args.tls_ca_out)
            except OSError as error:
                raise HarnessError(
                    f"cannot write the CA certificate to {args.tls_ca_out}: {error.strerror}"
                ) from None
    return context


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as error:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, wanted, error)
    return soft


def _url(scheme: str, host: str, port: int) -> str:
    try:
        is_v6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        is_v6 = False
    return f"{scheme}://[{host}]:{port}" if is_v6 else f"{scheme}://{host}:{port}"


def _wait_for_stop_signal() -> None:
    stop = gevent.event.Event()
    handlers = [gevent.signal_handler(number, stop.set) for number in (signal.SIGINT, signal.SIGTERM)]
    try:
        stop.wait()
    finally:
        for handler in handlers:
            handler.cancel()


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="certctl-load target: %(message)s")
    _check_options(args)
    keys = _api_keys(args.token)
    raise_open_file_limit()
    ssl_context = _tls_context(args)
    stall = StallWindow(args.stall_at, args.stall_for) if args.stall_at is not None else None
    slow = EvenSpread(args.slow_fraction) if args.slow_fraction else None
    store = _open_store(args)
    request_log: RequestLog | None = None
    try:
        app = CertctlApp(
            store,
            keys,
            limiter=RateLimiter(args.rate_limit, args.rate_burst or DEFAULT_RATE_BURST)
            if args.rate_limit
            else None,
            timing=HeartbeatTiming(args.latency_ms / 1000.0, slow, (args.slow_ms or 0.0) / 1000.0),
            errors=EvenSpread(args.error_fraction) if args.error_fraction else None,
            capacity=CapacityQueue(args.capacity) if args.capacity else None,
        )
        request_log = RequestLog(args.request_log) if args.request_log else None
        server = HttpServer(
            app,
            host=args.host,
            port=args.port,
            ssl_context=ssl_context,
            request_log=request_log,
            hold=stall.hold if stall else None,
            idle_timeout_s=args.idle_timeout,
            reuse_port=args.reuse_port,
        )
        try:
            host, port = server.start()
        except OSError as error:
            raise HarnessError(
                f"cannot listen on {args.host}:{args.port}: {error.strerror or error}"
            ) from None
        if stall is not None:
            stall.arm()
        scheme = "https" if ssl_context is not None else "http"
        print(f"certctl-load target listening on {_url(scheme, host, port)}", flush=True)
        _wait_for_stop_signal()
        server.stop(STOP_GRACE_S)
    finally:
        if request_log is not None:
            request_log.close()
        store.close()
    return exitcodes.OK
