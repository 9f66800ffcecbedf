"""Trend samples in bounded memory: counts per whole microsecond, beside exact raw count, min, max, sum.

A sample of ``ms`` milliseconds counts at ``round(ms * 1000)`` microseconds. The counts live in pages
of 16,384 µs (16.384 ms), allocated only where samples fall. A page starts sparse: an
``array('I')`` of the page's sample count, then ``offset << 18 | count`` entries, 4 bytes each,
appended as batches of samples come (one per distinct value in a batch; merged when read). Past
4,096 entries it turns dense: one
counter per microsecond, ``array('B')`` (16 KB) widened to 'H', 'I', 'Q' only when a counter
overflows. Either way a page takes at most 8 bytes per sample in it (as many as the ``array('d')``
of raw values it replaces; a sparse page 4), plus about 150 bytes of Python objects, and repeated
values cost nothing more. The sum is kept as :func:`sum_parts` of the raw values, exact and
mergeable; count, min and max are the raw values'.
"""

from __future__ import annotations

import math
import operator
import sys
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate, chain, compress, islice, repeat
from typing import Any

PAGE_BITS = 14
PAGE = 1 << PAGE_BITS
_OFFSET = PAGE - 1
_COUNT_BITS = 32 - PAGE_BITS  # a sparse entry is an unsigned 32-bit int
_MAX_SPARSE_COUNT = (1 << _COUNT_BITS) - 1
# A sparse page this long (4 bytes an entry) is as large as a dense 'B' page.
_MAX_SPARSE_ENTRIES = PAGE // 4
_WIDER = {"B": "H", "H": "I", "I": "Q"}
_ROUND = float.__round__  # round-half-even to int, as round(); faster through map


def sum_parts(values: Sequence[float], grain: float = 0.0) -> list[float]:
    """The exact sum of ``values`` as floats: the correctly rounded sum (math.fsum), then the rounded
    rest, and so on until nothing is left. The parts depend only on the exact sum, so
    ``math.fsum(parts) == math.fsum(values)`` and ``sum_parts(parts_a + parts_b)`` merges exactly.

    ``grain``: a power of two that every value is a multiple of, if known. Every rest is then one
    too, so a rest under ``grain`` is 0 and the pass that would find it is skipped."""
    parts: list[float] = []
    rest = math.fsum(values)
    while rest:
        parts.append(rest)
        if math.ulp(rest) < 2 * grain:  # what is left is within ulp/2 < grain, a multiple of it: 0
            break
        rest = math.fsum(chain(values, [-part for part in parts]))
    return parts


def widened(page: array[int]) -> array[int]:
    """The same counters in the next wider item size, copied byte by byte in strided slices (a
    page of 16,384 counters in tens of microseconds, where converting item by item takes a
    millisecond)."""
    wider = array(_WIDER[page.typecode])
    narrow, wide = page.itemsize, wider.itemsize
    source, target = page.tobytes(), bytearray(len(page) * wide)
    shift = 0 if sys.byteorder == "little" else wide - narrow  # where the narrow bytes go
    for byte in range(narrow):
        target[shift + byte :: wide] = source[byte::narrow]
    wider.frombytes(target)
    return wider


class Histogram:
    """Samples at microsecond resolution in sparse pages, with their exact raw count, min, max and sum."""

    __slots__ = ("count", "low", "high", "parts", "dense", "sparse")

    def __init__(self) -> None:
        self.count = 0
        self.low = math.inf
        self.high = -math.inf
        self.parts: list[float] = []
        self.dense: dict[int, array[int]] = {}  # page -> one counter per microsecond
        # page -> its sample count (under 2**30), then offset << _COUNT_BITS | count, unsorted
        self.sparse: dict[int, array[int]] = {}

    @property
    def total(self) -> float:
        """The sum of the raw values, exactly as math.fsum gives it."""
        return math.fsum(self.parts)

    def add_values(self, values: Sequence[float], *also: Histogram) -> None:
        """Add raw samples in ms (finite, within ±1e305) to this histogram and to ``also``."""
        floats = list(values)  # boxed once for the passes below
        counts = Counter(map(_ROUND, map(operator.mul, floats, repeat(1000.0))))
        low, high = min(floats), max(floats)
        # Positive floats are multiples of the ulp of the smallest.
        parts = sum_parts(floats, math.ulp(low) if low > 0 else 0.0)
        for histogram in (self, *also):
            histogram.add(counts.items(), len(floats), low, high, parts)

    def add(
        self, counts: Iterable[tuple[int, int]], count: int, low: float, high: float, parts: Sequence[float]
    ) -> None:
        """Add ``count`` samples: ``counts`` of them per microsecond, and their raw min, max, sum_parts."""
        self.count += count
        self.low = min(self.low, low)
        self.high = max(self.high, high)
        self.parts = sum_parts([*self.parts, *parts])
        dense, sparse = self.dense, self.sparse
        for micros, n in counts:
            page_no = micros >> PAGE_BITS
            page = dense.get(page_no)
            if page is not None:
                try:
                    page[micros & _OFFSET] += n
                except OverflowError:
                    self._add_dense(page_no, micros & _OFFSET, n)
                continue
            entries = sparse.get(page_no)
            if entries is None:
                entries = sparse[page_no] = array("I", (0,))
            if n <= _MAX_SPARSE_COUNT and len(entries) <= _MAX_SPARSE_ENTRIES:
                entries.append((micros & _OFFSET) << _COUNT_BITS | n)
                entries[0] += n
            else:  # as large as a dense page, or too large a count: dense from now on
                self._make_dense(page_no, sparse.pop(page_no))
                self._add_dense(page_no, micros & _OFFSET, n)

    def _make_dense(self, page_no: int, entries: array[int]) -> None:
        """A sparse page's entries into a dense page of bytes, widened only if a counter needs it
        (one loop, no call per entry: it runs inside a fold, a few times a run)."""
        page = array("B", bytes(PAGE))
        for entry in islice(entries, 1, None):
            offset, count = entry >> _COUNT_BITS, entry & _MAX_SPARSE_COUNT
            try:
                page[offset] += count
            except OverflowError:
                self.dense[page_no] = page
                self._add_dense(page_no, offset, count)
                page = self.dense[page_no]
        self.dense[page_no] = page

    def _add_dense(self, page_no: int, offset: int, n: int) -> None:
        page = self.dense[page_no]
        while True:
            try:
                page[offset] += n
                return
            except OverflowError:
                page = self.dense[page_no] = widened(page)

    def items(self) -> Iterator[tuple[int, int]]:
        """(microseconds, count) for every value present, ascending."""
        for page_no in sorted(self.dense.keys() | self.sparse.keys()):
            base = page_no << PAGE_BITS
            page = self.dense.get(page_no)
            if page is not None:
                yield from zip(compress(range(base, base + PAGE), page), filter(None, page), strict=True)
            else:
                merged: Counter[int] = Counter()
                for entry in islice(self.sparse[page_no], 1, None):
                    merged[entry >> _COUNT_BITS] += entry & _MAX_SPARSE_COUNT
                for offset in sorted(merged):
                    yield base + offset, merged[offset]

    def to_wire(self) -> list[Any]:
        """``[count, min, max, sum_parts, micros, counts]``: plain data, as long as the distinct values."""
        micros, counts = zip(*self.items(), strict=True) if self.count else ((), ())
        return [self.count, self.low, self.high, list(self.parts), list(micros), list(counts)]

    def add_wire(self, wire: Sequence[Any]) -> None:
        """Add another histogram's to_wire() (through JSON or msgpack)."""
        count, low, high, parts, micros, counts = wire
        if count:
            self.add(zip(micros, counts, strict=True), count, low, high, parts)

    def page_count(self, page_no: int) -> int:
        """How many samples fall in a page."""
        page = self.dense.get(page_no)
        if page is not None:
            return sum(page)
        entries = self.sparse.get(page_no)
        return 0 if entries is None else entries[0]


def _page_counts(histograms: Sequence[Histogram], page_no: int) -> list[int]:
    """One counter per microsecond of a page, over all ``histograms``."""
    counts = [0] * PAGE
    for histogram in histograms:
        page = histogram.dense.get(page_no)
        if page is not None:
            counts = list(map(operator.add, counts, page))
        for entry in islice(histogram.sparse.get(page_no, ()), 1, None):
            counts[entry >> _COUNT_BITS] += entry & _MAX_SPARSE_COUNT
    return counts


def values_at(histograms: Sequence[Histogram], ranks: Sequence[int]) -> list[int]:
    """The microsecond values at 0-based ``ranks`` (ascending, below the total count) of all
    ``histograms``' samples together, in one walk over their pages."""
    found: list[int] = []
    if not ranks:
        return found
    pages = sorted(set().union(*(h.dense.keys() | h.sparse.keys() for h in histograms)))
    before = 0  # samples in the pages walked so far
    wanted = iter(ranks)
    rank = next(wanted)
    for page_no in pages:
        after = before + sum(h.page_count(page_no) for h in histograms)
        if rank < after:
            cumulative = list(accumulate(_page_counts(histograms, page_no)))
            base = page_no << PAGE_BITS
            while rank < after:
                found.append(base + bisect_right(cumulative, rank - before))
                rank = next(wanted, -1)
                if rank < 0:
                    return found
        before = after
    raise ValueError(f"rank {rank} is not below the {before} samples")
