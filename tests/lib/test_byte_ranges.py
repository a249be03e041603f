"""Range headers as browsers send them when a student seeks in a lecture."""

from __future__ import annotations

from pathlib import Path

import pytest

from chronos_pipeline.lib.byte_ranges import ByteRange, file_slice, parse_range, read_slice
from chronos_pipeline.lib.errors import RangeNotSatisfiableError

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-499", (0, 499)),
        ("bytes=500-", (500, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),  # a suffix longer than the file is the whole file
        ("bytes=990-5000", (990, 999)),  # an end past the file is clamped
        ("bytes=999-999", (999, 999)),
        ("BYTES = 10 - 19", (10, 19)),
    ],
)
def test_one_range_is_served_as_asked(header: str, expected: tuple[int, int]) -> None:
    assert parse_range(header, SIZE) == ByteRange(*expected, SIZE)


@pytest.mark.parametrize(
    "header",
    [None, "", "bytes=", "bytes=-", "bytes=5-2", "items=0-5", "bytes=a-b", "bytes=0-1,5-9",
     "0-100"],
)
def test_malformed_other_unit_or_several_ranges_mean_the_whole_file(
    header: str | None,
) -> None:
    assert parse_range(header, SIZE) is None
    plan = file_slice(header, SIZE)
    assert (plan.status_code, plan.start, plan.length) == (200, 0, SIZE)
    assert plan.headers == {"accept-ranges": "bytes", "content-length": str(SIZE)}


@pytest.mark.parametrize(("header", "size"),
                         [("bytes=1000-", SIZE), ("bytes=5000-6000", SIZE), ("bytes=-0", SIZE),
                          ("bytes=0-", 0), ("bytes=-10", 0)])
def test_a_range_past_the_end_is_416_with_the_size(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiableError) as caught:
        file_slice(header, size)
    assert caught.value.status_code == 416
    assert caught.value.headers == {"content-range": f"bytes */{size}"}


def test_partial_plan_has_content_range_and_length() -> None:
    plan = file_slice("bytes=100-199", SIZE)
    assert plan.status_code == 206 and (plan.start, plan.length) == (100, 100)
    assert plan.headers == {"accept-ranges": "bytes", "content-length": "100",
                            "content-range": "bytes 100-199/1000"}


def test_read_slice_yields_exactly_the_bytes_in_small_chunks(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    pieces = list(read_slice(path, 1000, 5000, chunk=1024))
    assert b"".join(pieces) == data[1000:6000]
    assert max(len(p) for p in pieces) == 1024
    assert b"".join(read_slice(path, len(data) - 3, 3)) == data[-3:]
