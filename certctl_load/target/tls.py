"""HTTPS for the reference target: a throwaway P-256 CA and server certificate made with the
``openssl`` command, and the server's TLS 1.3 context."""

from __future__ import annotations

import ipaddress
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gevent import ssl

from certctl_load.errors import HarnessError

DEFAULT_NAMES = ("127.0.0.1", "::1", "localhost")
VALIDITY_DAYS = 7

_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = certctl-load
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = {alt_names}
"""


@dataclass(frozen=True)
class CertificateFiles:
    """PEM files: the CA that signed the server certificate, the certificate and its private key."""

    ca: Path
    cert: Path
    key: Path


def _alt_name(name: str) -> str:
    try:
        return f"IP:{ipaddress.ip_address(name)}"
    except ValueError:
        return f"DNS:{name}"


def _openssl(*args: str | Path) -> None:
    try:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as error:
        raise HarnessError(f"openssl {args[0]} failed: {error.stderr.strip()}") from None


def write_self_signed(directory: Path, names: tuple[str, ...] = DEFAULT_NAMES) -> CertificateFiles:
    """Make a P-256 CA and a server certificate for ``names`` (IP addresses or DNS names) in
    ``directory``; both valid for a week from now."""
    if shutil.which("openssl") is None:
        raise HarnessError("--tls needs the openssl command to make a certificate; install OpenSSL")
    config = directory / "openssl.cnf"
    config.write_text(_CONFIG.format(alt_names=",".join(_alt_name(name) for name in names)))
    files = CertificateFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca_key, request = directory / "ca.key", directory / "server.csr"
    for key in (ca_key, files.key):
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    days = str(VALIDITY_DAYS)
    _openssl("req", "-x509", "-new", "-key", ca_key, "-config", config, "-extensions", "ca",
             "-subj", "/CN=certctl-load target CA", "-days", days, "-out", files.ca)  # fmt: skip
    _openssl("req", "-new", "-key", files.key, "-config", config, "-subj", f"/CN={names[0]}", "-out", request)
    _openssl("x509", "-req", "-in", request, "-CA", files.ca, "-CAkey", ca_key,
             "-set_serial", str(secrets.randbits(63)), "-days", days,
             "-extfile", config, "-extensions", "server", "-out", files.cert)  # fmt: skip
    return files


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context (TLS 1.3 minimum, as certctl) serving ``cert`` with ``key``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise HarnessError(f"cannot load the TLS certificate {cert} with key {key}: {error}") from None
    return context
