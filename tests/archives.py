"""Builders for the test archives the compare tests need (the script that generates every fixture)."""

from __future__ import annotations

import gzip
import io
import lzma
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

Entry = tuple[str, bytes]


def make_zip(
    path: Path,
    entries: Iterable[Entry],
    *,
    date: tuple[int, ...] = (2020, 1, 1, 0, 0, 0),
    mode: int = 0o644,
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date)  # type: ignore[arg-type]
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = compression
            z.writestr(info, data)
    return path


def tar_bytes(
    entries: Iterable[Entry],
    *,
    mtime: int = 1700000000,
    mode: int = 0o644,
    uid: int = 0,
    extra: Iterable[tarfile.TarInfo] = (),
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid = len(data), mtime, mode, uid
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return buf.getvalue()


def gz(data: bytes, *, mtime: int = 0) -> bytes:
    return gzip.compress(data, mtime=mtime)


def make_ar(path: Path, members: Iterable[Entry], *, mtime: int = 0) -> Path:
    """A System V / GNU ar archive, as a .deb is."""
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        header = f"{name + '/':<16}{mtime:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
        assert len(header) == 60
        out += header + data + (b"\n" if len(data) % 2 else b"")
    path.write_bytes(bytes(out))
    return path


def make_deb(path: Path, files: Iterable[Entry], *, mtime: int = 1700000000) -> Path:
    control = gz(tar_bytes([("./control", b"Package: demo\nVersion: 1.0\n")], mtime=mtime))
    data = lzma.compress(tar_bytes(files, mtime=mtime))
    return make_ar(path, [("debian-binary", b"2.0\n"), ("control.tar.gz", control), ("data.tar.xz", data)])
