#!/bin/sh
# Self-signed P-256 certificate for certctl-server, as certctl's own load-test stack makes it.
# Usage: tls-bootstrap.sh [DIR]   (default /certs); writes server.crt, server.key and ca.crt
# (the self-signed certificate again, for a client that wants to verify). Idempotent: an existing
# complete set is kept. Needs the openssl command line tool.
set -eu

dir="${1:-/certs}"
cert="$dir/server.crt"
key="$dir/server.key"
ca="$dir/ca.crt"

if [ -s "$cert" ] && [ -s "$key" ] && [ -s "$ca" ]; then
    echo "tls-bootstrap: certificate already in $dir, kept"
    exit 0
fi

mkdir -p "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc \
    -keyout "$key" -out "$cert" -days 3650 -subj "/CN=certctl-server" \
    -addext "subjectAltName=DNS:certctl-server,DNS:localhost,IP:127.0.0.1"
cp "$cert" "$ca"
# Readable by any user: certctl's image runs unprivileged, and this throwaway key guards a test stack.
chmod 0644 "$cert" "$key" "$ca"
echo "tls-bootstrap: self-signed P-256 certificate for certctl-server written to $dir"
