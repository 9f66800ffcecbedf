"""The heartbeat body as certctl reads it: optional JSON metadata that can never make the call fail."""

from __future__ import annotations

import json

from certctl_load.target.store import METADATA_LIMITS

_decoder = json.JSONDecoder()
_JSON_SPACE = " \t\n\r"


def parse_metadata(body: bytes | None) -> dict[str, str]:
    """The non-empty metadata values of a heartbeat body, as Go's ``json.Decoder`` in certctl sees them.

    Only the first JSON value counts (trailing bytes are ignored); it must be an object whose
    ``version``, ``hostname``, ``os``, ``architecture`` and ``ip_address`` fields (names matched
    case-insensitively, other fields ignored) are strings or null. An empty, oversized (None) or
    malformed body, or a field of another type, yields no metadata at all.
    """
    if not body:
        return {}
    text = body.decode("utf-8", errors="replace")
    start = len(text) - len(text.lstrip(_JSON_SPACE))
    try:
        value, _ = _decoder.raw_decode(text, start)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    found: dict[str, str] = {}
    for key, item in value.items():
        name = key.lower()
        if name not in METADATA_LIMITS or item is None:
            continue
        if not isinstance(item, str):
            return {}
        found[name] = item
    return {name: item for name, item in found.items() if item}
