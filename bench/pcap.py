"""A small reader of classic libpcap files (as ``tcpdump -w`` writes them) and the pairing of HTTP
requests with their responses on keep-alive connections, for the wire-truth bench.

Reads both byte orders, microsecond and nanosecond timestamps, and the link types a loopback or
Ethernet capture on Linux or a BSD has (NULL, LOOP, EN10MB, RAW, LINUX_SLL, LINUX_SLL2); IPv4 and
IPv6 (skipping hop-by-hop, routing and destination-options headers) carrying TCP. Not pcapng.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

_MICRO, _NANO = 0xA1B2C3D4, 0xA1B23C4D
_GLOBAL_HEADER = 24
_RECORD_HEADER = 16
_LINKTYPE_MASK = 0x0FFFFFFF  # the upper bits may carry FCS information
_ETHERTYPES_IP = (0x0800, 0x86DD)
_VLAN = 0x8100
_IPV6_EXTENSIONS = (0, 43, 60)  # hop-by-hop, routing, destination options
_TCP = 6


class PcapError(Exception):
    """A file this reader cannot read: its one-line message says why."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One captured TCP segment: its time, its endpoints and how many payload bytes it carried."""

    ts_ns: int  # capture time, Unix nanoseconds
    src: str
    sport: int
    dst: str
    dport: int
    payload: int  # from the IP and TCP lengths: the snapshot may hold fewer bytes


@dataclass(frozen=True)
class Capture:
    """A pcap file's TCP segments in file order, how many records it held and how many were skipped
    (not IP, not TCP, a later fragment, or cut before the TCP ports and data offset)."""

    linktype: int
    segments: list[Segment]
    records: int
    skipped: int


def _ethernet(frame: bytes) -> int | None:
    if len(frame) < 14:
        return None
    ethertype, offset = struct.unpack_from(">H", frame, 12)[0], 14
    if ethertype == _VLAN and len(frame) >= 18:
        ethertype, offset = struct.unpack_from(">H", frame, 16)[0], 18
    return offset if ethertype in _ETHERTYPES_IP else None


def _ethertype_at(at: int, length: int) -> Callable[[bytes], int | None]:
    """A link header of ``length`` bytes with the big-endian ethertype at ``at``."""

    def offset(frame: bytes) -> int | None:
        if len(frame) < length:
            return None
        return length if struct.unpack_from(">H", frame, at)[0] in _ETHERTYPES_IP else None

    return offset


# Link type -> the offset of the IP header in a frame (None: not IP). NULL and LOOP carry an address
# family (in the writer's or network byte order): the IP version nibble decides instead.
_LINKTYPES: dict[int, Callable[[bytes], int | None]] = {
    0: lambda frame: 4,  # NULL (BSD loopback)
    1: _ethernet,  # EN10MB (Linux's lo too)
    101: lambda frame: 0,  # RAW
    108: lambda frame: 4,  # LOOP (OpenBSD loopback)
    113: _ethertype_at(14, 16),  # LINUX_SLL
    276: _ethertype_at(0, 20),  # LINUX_SLL2
}


def _ipv4(frame: bytes, at: int) -> tuple[str, str, int, int] | None:
    """Source, destination, TCP header offset and IP payload length of a TCP packet (first fragment)."""
    if len(frame) < at + 20:
        return None
    header = (frame[at] & 0x0F) * 4
    total, fragment, protocol = struct.unpack_from(">H2xHxB", frame, at + 2)
    if protocol != _TCP or fragment & 0x1FFF:
        return None
    src, dst = (socket.inet_ntop(socket.AF_INET, frame[i : i + 4]) for i in (at + 12, at + 16))
    return src, dst, at + header, total - header


def _ipv6(frame: bytes, at: int) -> tuple[str, str, int, int] | None:
    """As ``_ipv4``, past any hop-by-hop, routing and destination-options headers."""
    if len(frame) < at + 40:
        return None
    payload, protocol = struct.unpack_from(">HB", frame, at + 4)
    tcp = at + 40
    while protocol in _IPV6_EXTENSIONS and len(frame) >= tcp + 2:
        protocol, extension = frame[tcp], (frame[tcp + 1] + 1) * 8
        tcp += extension
        payload -= extension
    if protocol != _TCP:
        return None
    src, dst = (socket.inet_ntop(socket.AF_INET6, frame[i : i + 16]) for i in (at + 8, at + 24))
    return src, dst, tcp, payload


def _segment(ts_ns: int, frame: bytes, at: int) -> Segment | None:
    """The TCP segment of the IP packet at ``at`` in ``frame``, or None."""
    if len(frame) <= at or (version := frame[at] >> 4) not in (4, 6):
        return None
    packet = (_ipv4 if version == 4 else _ipv6)(frame, at)
    if packet is None:
        return None
    src, dst, tcp, ip_payload = packet
    if len(frame) < tcp + 13:
        return None
    sport, dport = struct.unpack_from(">HH", frame, tcp)
    return Segment(ts_ns, src, sport, dst, dport, ip_payload - (frame[tcp + 12] >> 4) * 4)


def _records(handle: BinaryIO, path: Path, order: str, tick_ns: int) -> Iterator[tuple[int, bytes]]:
    record = struct.Struct(order + "IIII")
    while header := handle.read(_RECORD_HEADER):
        if len(header) < _RECORD_HEADER:
            raise PcapError(f"{path}: truncated record header at the end of the file")
        seconds, fraction, captured, _ = record.unpack(header)
        frame = handle.read(captured)
        if len(frame) < captured:
            raise PcapError(f"{path}: truncated last record ({len(frame)} of {captured} bytes)")
        yield seconds * 1_000_000_000 + fraction * tick_ns, frame


def read_capture(path: Path) -> Capture:
    """Every TCP segment in the classic pcap file ``path``; PcapError if it is not one this reads."""
    with path.open("rb") as handle:
        header = handle.read(_GLOBAL_HEADER)
        if len(header) < _GLOBAL_HEADER:
            raise PcapError(f"{path}: {len(header)} bytes, shorter than a pcap file header")
        for order in "<>":
            magic = struct.unpack_from(order + "I", header)[0]
            if magic in (_MICRO, _NANO):
                break
        else:
            raise PcapError(f"{path}: not a classic pcap file (magic {header[:4].hex()}; pcapng is not read)")
        linktype = struct.unpack_from(order + "I", header, 20)[0] & _LINKTYPE_MASK
        network_offset = _LINKTYPES.get(linktype)
        if network_offset is None:
            raise PcapError(f"{path}: link type {linktype} is not read (only {sorted(_LINKTYPES)})")
        segments: list[Segment] = []
        records = 0
        for ts_ns, frame in _records(handle, path, order, 1 if magic == _NANO else 1000):
            records += 1
            at = network_offset(frame)
            segment = None if at is None else _segment(ts_ns, frame, at)
            if segment is not None:
                segments.append(segment)
    return Capture(linktype, segments, records, records - len(segments))


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request on the wire: its client endpoint, its first packet and its response's first packet."""

    client: tuple[str, int]
    request_ns: int
    response_ns: int

    @property
    def latency_ms(self) -> float:
        return (self.response_ns - self.request_ns) / 1e6


@dataclass
class Pairing:
    """The exchanges paired in a capture (by request time), and what could not be paired."""

    exchanges: list[Exchange] = field(default_factory=list)
    unanswered: int = 0  # requests whose response's first packet is not in the capture
    unsolicited: int = 0  # server segments on a connection with no request in the capture


def pair_exchanges(segments: Iterable[Segment], server: tuple[str, int]) -> Pairing:
    """Pair, per connection, each request's first packet with its response's first packet.

    Segments to ``server`` (address, port) are the client's, from it the server's (by address and
    port: a client on another address may get the server's port number as its own); only those
    carrying data count. A request starts when the client sends on a new connection or after the
    server has started answering the previous one (one request at a time per connection, as
    keep-alive HTTP/1.1 without pipelining); the first server segment after it starts its response.
    """
    pairing = Pairing()
    requests: dict[
        tuple[str, int], int | None
    ] = {}  # per client: open request's first packet; None: answered
    for segment in segments:
        if segment.payload <= 0:
            continue
        if (segment.dst, segment.dport) == server:
            client = (segment.src, segment.sport)
            if requests.get(client) is None:
                requests[client] = segment.ts_ns
        elif (segment.src, segment.sport) == server:
            client = (segment.dst, segment.dport)
            if client not in requests:
                pairing.unsolicited += 1
            elif (request_ns := requests[client]) is not None:
                pairing.exchanges.append(Exchange(client, request_ns, segment.ts_ns))
                requests[client] = None
    pairing.unanswered = sum(1 for request_ns in requests.values() if request_ns is not None)
    pairing.exchanges.sort(key=lambda exchange: exchange.request_ns)
    return pairing
