"""The wire-truth bench's pcap reader, request/response pairing and tables, on pcap files written here."""

from __future__ import annotations

import re
import socket
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import pcap  # noqa: E402  (bench/pcap.py)
import wire_truth  # noqa: E402  (bench/wire_truth.py)

SERVER = ("127.0.0.1", 8080)
T0 = 1_796_000_000  # Unix seconds
ETHERNET, NULL, RAW, LOOP, LINUX_SLL, LINUX_SLL2 = 1, 0, 101, 108, 113, 276


def tcp(sport: int, dport: int, payload: int, *, options: bool = True) -> bytes:
    """A TCP header (with 12 bytes of timestamp options, as Linux sends) and ``payload`` bytes."""
    words = 8 if options else 5
    header = struct.pack(">HHIIBBHHH", sport, dport, 1, 1, words << 4, 0x18, 512, 0, 0)
    return header + (b"\x01\x01\x08\x0a" + bytes(8)) * options + b"x" * payload


def ipv4(src: str, dst: str, segment: bytes, *, protocol: int = 6) -> bytes:
    header = struct.pack(">BBHHHBBH", 0x45, 0, 20 + len(segment), 0, 0x4000, 64, protocol, 0)
    return header + socket.inet_aton(src) + socket.inet_aton(dst) + segment


def ipv6(src: str, dst: str, segment: bytes, *, hop_by_hop: bool = False) -> bytes:
    extension = bytes([6, 0, 1, 4, 0, 0, 0, 0]) if hop_by_hop else b""  # next header TCP, PadN option
    first = 0 if hop_by_hop else 6
    header = struct.pack(">IHBB", 6 << 28, len(extension) + len(segment), first, 64)
    addresses = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
    return header + addresses + extension + segment


def ethernet(packet: bytes, *, vlan: bool = False) -> bytes:
    ethertype = 0x0800 if packet[0] >> 4 == 4 else 0x86DD
    tag = struct.pack(">HH", 0x8100, 7) if vlan else b""
    return bytes(6) + bytes(6) + tag + struct.pack(">H", ethertype) + packet


def segment(src: tuple[str, int], dst: tuple[str, int], payload: int) -> bytes:
    """An Ethernet frame carrying one TCP segment over IPv4 or IPv6 (by the addresses)."""
    make = ipv6 if ":" in src[0] else ipv4
    return ethernet(make(src[0], dst[0], tcp(src[1], dst[1], payload)))


def write_pcap(
    path: Path,
    records: list[tuple[int, bytes]],
    *,
    order: str = "<",
    nano: bool = False,
    linktype: int = ETHERNET,
    snaplen: int = 160,
) -> Path:
    """A classic pcap file of ``(time in ns, frame)`` records, frames cut to ``snaplen`` as tcpdump -s."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    with path.open("wb") as handle:
        handle.write(struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        for ts_ns, frame in records:
            seconds, rest = divmod(ts_ns, 1_000_000_000)
            kept = frame[:snaplen]
            fraction = rest if nano else rest // 1000
            handle.write(struct.pack(order + "IIII", seconds, fraction, len(kept), len(frame)) + kept)
    return path


def at(ms: float) -> int:
    """T0 plus ``ms`` milliseconds, in ns."""
    return T0 * 1_000_000_000 + round(ms * 1_000_000)


CLIENT = ("127.0.0.1", 40001)
# Three requests in a row on one keep-alive connection: the second's body is a second segment, the
# third's response comes in two; pure ACKs (no payload) between them.
THREE_REQUESTS = [
    (at(0.0), segment(CLIENT, SERVER, 300)),
    (at(0.1), segment(SERVER, CLIENT, 0)),
    (at(1.5), segment(SERVER, CLIENT, 192)),
    (at(30_000.0), segment(CLIENT, SERVER, 150)),
    (at(30_000.2), segment(CLIENT, SERVER, 150)),
    (at(30_002.0), segment(SERVER, CLIENT, 192)),
    (at(60_000.0), segment(CLIENT, SERVER, 300)),
    (at(60_000.75), segment(SERVER, CLIENT, 100)),
    (at(60_001.0), segment(SERVER, CLIENT, 92)),
    (at(60_001.1), segment(CLIENT, SERVER, 0)),
]


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_reads_every_segment_in_either_byte_order_and_precision(tmp_path, order, nano):
    capture = pcap.read_capture(write_pcap(tmp_path / "run.pcap", THREE_REQUESTS, order=order, nano=nano))
    assert (capture.linktype, capture.records, capture.skipped) == (ETHERNET, 10, 0)
    first, second = capture.segments[:2]
    assert first == pcap.Segment(at(0.0), "127.0.0.1", 40001, "127.0.0.1", 8080, 300)
    assert second == pcap.Segment(at(0.1), "127.0.0.1", 8080, "127.0.0.1", 40001, 0)
    assert [s.payload for s in capture.segments] == [300, 0, 192, 150, 150, 192, 300, 100, 92, 0]


def test_a_payload_length_comes_from_the_headers_not_the_snapshot(tmp_path):
    capture = pcap.read_capture(write_pcap(tmp_path / "run.pcap", THREE_REQUESTS, snaplen=70))
    assert capture.segments[0].payload == 300


def test_three_sequential_requests_on_one_connection_pair_with_their_responses(tmp_path):
    capture = pcap.read_capture(write_pcap(tmp_path / "run.pcap", THREE_REQUESTS, nano=True))
    pairing = pcap.pair_exchanges(capture.segments, SERVER)
    assert (pairing.unanswered, pairing.unsolicited) == (0, 0)
    assert [(e.client, e.request_ns) for e in pairing.exchanges] == [
        (CLIENT, at(0.0)), (CLIENT, at(30_000.0)), (CLIENT, at(60_000.0))
    ]  # fmt: skip
    assert [e.latency_ms for e in pairing.exchanges] == pytest.approx([1.5, 2.0, 0.75])


def test_interleaved_connections_pair_apart(tmp_path):
    a, b = ("127.0.0.1", 40001), ("127.0.0.2", 40001)  # one port from two source addresses
    records = [
        (at(0.0), segment(a, SERVER, 300)),
        (at(0.2), segment(b, SERVER, 300)),
        (at(0.5), segment(SERVER, b, 192)),
        (at(0.6), segment(b, SERVER, 300)),
        (at(0.9), segment(SERVER, a, 192)),
        (at(1.0), segment(SERVER, a, 50)),
        (at(1.4), segment(SERVER, b, 192)),
    ]
    capture = pcap.read_capture(write_pcap(tmp_path / "run.pcap", records))
    pairing = pcap.pair_exchanges(capture.segments, SERVER)
    assert [(e.client, e.latency_ms) for e in pairing.exchanges] == [
        (a, pytest.approx(0.9)), (b, pytest.approx(0.3)), (b, pytest.approx(0.8))
    ]  # fmt: skip


def test_a_client_on_another_address_may_have_the_servers_port_number(tmp_path):
    client = ("127.0.0.2", SERVER[1])  # an ephemeral port is free per source address
    records = [
        (at(0.0), segment(client, SERVER, 300)),
        (at(10.0), segment(SERVER, client, 192)),
        (at(20.0), segment(client, SERVER, 300)),
        (at(35.0), segment(SERVER, client, 192)),
    ]
    capture = pcap.read_capture(write_pcap(tmp_path / "run.pcap", records))
    pairing = pcap.pair_exchanges(capture.segments, SERVER)
    assert [(e.client, e.latency_ms) for e in pairing.exchanges] == [(client, 10.0), (client, 15.0)]
    assert (pairing.unanswered, pairing.unsolicited) == (0, 0)


@pytest.mark.parametrize("hop_by_hop", [False, True])
def test_an_ipv6_connection_pairs(tmp_path, hop_by_hop):
    client, server = ("::1", 40002), ("::1", 8080)
    records = [
        (at(0.0), ethernet(ipv6("::1", "::1", tcp(40002, 8080, 300), hop_by_hop=hop_by_hop))),
        (at(2.25), ethernet(ipv6("::1", "::1", tcp(8080, 40002, 192), hop_by_hop=hop_by_hop))),
    ]
    capture = pcap.read_capture(write_pcap(tmp_path / "run.pcap", records, order=">"))
    assert capture.segments[0] == pcap.Segment(at(0.0), "::1", 40002, "::1", 8080, 300)
    pairing = pcap.pair_exchanges(capture.segments, server)
    assert [(e.client, e.latency_ms) for e in pairing.exchanges] == [(client, pytest.approx(2.25))]


@pytest.mark.parametrize(
    ("linktype", "header"),
    [
        (NULL, struct.pack("<I", socket.AF_INET)),
        (LOOP, struct.pack(">I", socket.AF_INET)),
        (RAW, b""),
        (LINUX_SLL, bytes(14) + struct.pack(">H", 0x0800)),
        (LINUX_SLL2, struct.pack(">H", 0x0800) + bytes(18)),
    ],
)
def test_other_link_types(tmp_path, linktype, header):
    packet = ipv4("127.0.0.1", "127.0.0.1", tcp(40001, 8080, 42, options=False))
    capture = pcap.read_capture(
        write_pcap(tmp_path / "run.pcap", [(at(0), header + packet)], linktype=linktype)
    )
    assert capture.segments == [pcap.Segment(at(0), "127.0.0.1", 40001, "127.0.0.1", 8080, 42)]


def test_a_vlan_tag_is_skipped(tmp_path):
    frame = ethernet(ipv4("127.0.0.1", "127.0.0.1", tcp(40001, 8080, 42)), vlan=True)
    assert pcap.read_capture(write_pcap(tmp_path / "run.pcap", [(at(0), frame)])).segments[0].payload == 42


def test_records_that_are_not_tcp_segments_are_skipped(tmp_path):
    arp = bytes(12) + struct.pack(">H", 0x0806) + bytes(28)
    udp = ethernet(ipv4("127.0.0.1", "127.0.0.1", bytes(16), protocol=17))
    cut = segment(CLIENT, SERVER, 10)[:40]  # IP header, then 6 bytes of TCP
    records = [(at(0), arp), (at(1), udp), (at(2), cut), (at(3), segment(CLIENT, SERVER, 10))]
    capture = pcap.read_capture(write_pcap(tmp_path / "run.pcap", records))
    assert (capture.records, capture.skipped, len(capture.segments)) == (4, 3, 1)


def test_what_cannot_be_paired_is_counted():
    segments = [
        pcap.Segment(at(0), "127.0.0.1", 40001, "127.0.0.1", 8080, 300),
        pcap.Segment(at(1), "127.0.0.1", 8080, "127.0.0.1", 40003, 192),  # its request not captured
        pcap.Segment(at(2), "127.0.0.1", 40002, "127.0.0.1", 8080, 300),
        pcap.Segment(at(3), "127.0.0.1", 8080, "127.0.0.1", 40002, 192),
        pcap.Segment(at(4), "127.0.0.1", 40002, "127.0.0.1", 8080, 300),  # the run ended first
    ]
    pairing = pcap.pair_exchanges(segments, SERVER)
    assert (len(pairing.exchanges), pairing.unanswered, pairing.unsolicited) == (1, 2, 1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x0a\x0d\x0d\x0a" + bytes(20), "not a classic pcap file (magic 0a0d0d0a; pcapng is not read)"),
        (bytes(10), "10 bytes, shorter than a pcap file header"),
        (struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 160, 105), "link type 105 is not read"),
        (
            struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 160, 1)
            + struct.pack("<IIII", 1, 0, 60, 60)
            + bytes(9),
            "truncated last record (9 of 60 bytes)",
        ),
    ],
)
def test_a_file_it_cannot_read_says_why(tmp_path, content, message):
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(pcap.PcapError, match=re.escape(message)):
        pcap.read_capture(path)


TCPDUMP_CLOSING = """tcpdump: listening on lo, link-type EN10MB (Ethernet), snapshot length 160 bytes
61234 packets captured
122468 packets received by filter
{dropped} packets dropped by kernel
"""


def test_tcpdump_counts_are_read_from_its_closing_lines():
    stats = wire_truth.tcpdump_stats(TCPDUMP_CLOSING.format(dropped=3) + "1 packet dropped by interface\n")
    assert stats == wire_truth.CaptureStats(61234, 122468, 3, 1)
    assert wire_truth.tcpdump_stats(TCPDUMP_CLOSING.format(dropped=0)).dropped_by_interface == 0


def test_tcpdump_without_closing_counts_is_an_error():
    with pytest.raises(ValueError, match="tcpdump printed no 'captured' count"):
        wire_truth.tcpdump_stats("tcpdump: listening on lo\n")


def test_the_trace_and_the_wire_are_compared_per_window(tmp_path):
    t0 = float(T0)
    trace = tmp_path / "trace.123"
    lines = [
        f"{n} {t0 + n:.6f} {t0 + n + (0.02 if n == 6 else 0.001):.6f} 0 {1.0 + n:.3f} 200" for n in range(8)
    ]
    trace.write_text("\n".join(lines) + "\n")
    traced = wire_truth.read_trace([trace])
    exchanges = [pcap.Exchange(CLIENT, at(n * 1000 + 2), at(n * 1000 + 2 + 0.5 + n)) for n in range(8)]
    rows = wire_truth.compare(traced, pcap.Pairing(exchanges), 5.0)
    assert [(row.label, row.harness.count, row.wire.count, row.late) for row in rows] == [
        ("whole run", 8, 8, 1), ("0-5", 5, 5, 0), ("5-10", 3, 3, 1)
    ]  # fmt: skip
    whole = rows[0]
    assert whole.harness.figures[0] == pytest.approx(4.5)  # type-7 median of 1..8
    assert whole.harness.figures[-1] == pytest.approx(8.0)
    assert whole.wire.figures[-1] == pytest.approx(7.5)
    assert wire_truth.table_line(rows[2]).startswith("| 5-10 | 3 / 3 | 1 | 7.000 / 6.500 / +0.500 |")


def run_result(stats: wire_truth.CaptureStats, *, wire: int = 2) -> wire_truth.RunResult:
    """A finished run of two traced requests (in the summary too), ``wire`` of them paired."""
    traced = [wire_truth.Traced(float(T0 + n), float(T0 + n), 1.0) for n in range(2)]
    pairing = pcap.Pairing([pcap.Exchange(CLIENT, at(n * 1000), at(n * 1000 + 0.5)) for n in range(wire)])
    return wire_truth.RunResult(
        number=1,
        started="10:00:00 UTC",
        usage=wire_truth.Usage(returncode=0, cpu_s=1.0, peak_rss_kb=1, wall_s=1.0, timed_out=False),
        stats=stats,
        capture=pcap.Capture(ETHERNET, [], stats.captured, stats.captured),
        pairing=pairing,
        traced=traced,
        summary=wire_truth.SummaryFigures(2, 1.0, 1.0, 1.0, 0, None, (), {}),
        rows=wire_truth.compare(traced, pairing, 5.0),
        saturation=None,
    )


def test_a_run_fails_when_the_kernel_dropped_packets():
    assert run_result(wire_truth.CaptureStats(4, 8, 0, 0)).failures() == []
    assert run_result(wire_truth.CaptureStats(4, 8, 2, 0)).failures() == [
        "run 1: tcpdump: 2 packets dropped by kernel, 0 by interface: the wire figures are incomplete"
    ]


def test_a_run_fails_when_the_wire_and_the_trace_disagree():
    assert run_result(wire_truth.CaptureStats(4, 8, 0, 0), wire=1).failures() == [
        "run 1: request counts differ or are 0: summary 2, trace 2, wire 1"
    ]
