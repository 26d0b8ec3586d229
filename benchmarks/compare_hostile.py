"""The structural explanation on hostile archives: header fields that never end, bloated headers, broken streams.

Each pair differs in its last bytes only, so the whole input is read; every figure should stay well under a
second (the reading is linear, with caps on header fields). Before the caps, the 3 MB gzip with an
unterminated file name took minutes (quadratic).
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import struct
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from _common import figure

from compare.explain import explain_files


def gzip_fname(n: int, last: bytes) -> bytes:
    return b"\x1f\x8b\x08\x08" + bytes(6) + b"x" * n + last


def gzip_fcomment(n: int, last: bytes) -> bytes:
    return b"\x1f\x8b\x08\x10" + bytes(6) + b"x" * n + last


def gzip_second_member(n: int, last: bytes) -> bytes:
    return gzip.compress(b"first member\n", mtime=0) + gzip_fname(n, last)


def gzip_truncated(n: int, last: bytes) -> bytes:
    whole = gzip.compress(os.urandom(n), mtime=0)
    return whole[: len(whole) // 2] + last


def tar_pax(body: bytes) -> bytes:
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size = tarfile.XHDTYPE, len(body)
    member = tarfile.TarInfo("file")
    return (
        info.tobuf(tarfile.USTAR_FORMAT)
        + body
        + bytes(-len(body) % 512)
        + member.tobuf(tarfile.USTAR_FORMAT)
        + bytes(1024)
    )


def tar_pax_digits(n: int, last: bytes) -> bytes:
    """A pax header of digits: Python 3.11's tarfile searches it in quadratic time."""
    return tar_pax(b"1" * (n - 1) + last)


def tar_pax_record(n: int, last: bytes) -> bytes:
    """One well-formed pax record just under the 1 MiB cap, its value all digits."""
    value = b"1" * (min(n, 1 << 20) - 40) + last
    record = b" comment=" + value + b"\n"
    length = len(record) + len(str(len(record) + 7))
    return tar_pax(str(length).encode() + record)


def tar_gz_many_members(n: int, last: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.USTAR_FORMAT) as tar:
        for i in range(n // 30):  # ~30 compressed bytes per member
            tar.addfile(tarfile.TarInfo(f"m{i}"))
        info = tarfile.TarInfo("last")
        info.size = 1
        tar.addfile(info, io.BytesIO(last))
    return buf.getvalue()


def zip_extra_fields(n: int, last: bytes) -> bytes:
    """Central directory entries with 64 KiB extra fields of empty subfields (zipfile copies the rest each step)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("f", last)
    data = buf.getvalue()
    cd = data.index(b"PK\x01\x02")
    eocd = data.index(b"PK\x05\x06")
    entry = bytearray(data[cd:eocd])
    extra = b"\x99\x99\x00\x00" * 16383
    entry[30:32] = struct.pack("<H", len(extra))
    entry += extra
    count = max(1, n // len(entry))
    directory = bytes(entry) * count
    end = bytearray(data[eocd:])
    struct.pack_into("<HHLL", end, 8, count, count, len(directory), cd)
    return data[:cd] + directory + bytes(end)


def zip_corrupt_member(n: int, last: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.bin", os.urandom(n))
        z.writestr("b.txt", b"b" + last)
    data = bytearray(buf.getvalue())
    data[100:200] = bytes(100)  # inside a.bin's deflate stream
    return bytes(data)


# name -> (builder, target)
SHAPES: dict[str, tuple[Callable[[int, bytes], bytes], str]] = {
    "gzip, unterminated file name": (gzip_fname, "< 0.1 s"),
    "gzip, unterminated comment": (gzip_fcomment, "< 0.1 s"),
    "gzip, second member with an unterminated file name": (gzip_second_member, "< 0.1 s"),
    "gzip, truncated deflate stream": (gzip_truncated, "< 0.1 s"),
    "tar, pax header of digits (over the cap)": (tar_pax_digits, "< 0.1 s"),
    "tar, one 1 MiB pax record of digits": (tar_pax_record, "< 0.1 s"),
    "zip, 64 KiB extra fields of empty subfields": (zip_extra_fields, "< 0.1 s"),
    "zip, corrupt deflate stream in one member": (zip_corrupt_member, "< 0.1 s"),
    # not a header attack: many small members, bounded by Budget.max_members (the cost is per member)
    "tar.gz, one empty member per 30 bytes of input": (tar_gz_many_members, "< 50 us per member"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=3.0, help="size of each hostile input")
    args = parser.parse_args()
    n = int(args.mb * 1_000_000)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        for name, (make, target) in SHAPES.items():
            a, b = Path(tmp) / "a", Path(tmp) / "b"
            a.write_bytes(make(n, b"a"))
            b.write_bytes(make(n, b"b"))
            started = time.perf_counter()
            e = explain_files(a, b)
            seconds = time.perf_counter() - started
            size = max(a.stat().st_size, b.stat().st_size) / 1e6
            members = 2 * (n // 30 + 1) if make is tar_gz_many_members else 0  # both sides
            per = f", {seconds / members * 1e6:.0f} us per member" if members else ""
            figure(f"{name} ({size:.1f} MB)", f"{seconds:.3f} s{per} ({e.classification})", target)


if __name__ == "__main__":
    main()
