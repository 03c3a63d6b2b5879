"""D9 of issue 11: a zipped Shapefile whose headers understate a member's size (so its CRC
fails, or it unpacks to more than it claims) is a 415 problem+json, never a BadZipFile 500;
and what a zip really unpacks to is counted, not what its headers claim."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import shapely

from gridgov.config import get_settings
from tests.imports.conftest import shapefile_zip

BOUNDARIES = "/api/v1/imports/boundaries"


def _villages_zip(tmp_path: Path, compression: int = zipfile.ZIP_STORED) -> bytes:
    geoms = [shapely.box(111.1, 26.1, 111.12, 26.2)]
    blob = shapefile_zip(
        tmp_path,
        geoms,
        {"XZQDM": ["439902101202"], "XZQMC": ["北村"]},
        encoding="UTF-8",
        keep_cpg=True,
    )
    if compression == zipfile.ZIP_STORED:
        return blob
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as src, zipfile.ZipFile(out, "w", compression) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    return out.getvalue()


def _understate(blob: bytes, member_suffix: str, factor: float) -> bytes:
    """The zip with one member's sizes in its local and central headers scaled by factor."""
    data = bytearray(blob)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith(member_suffix))
    csize, usize = info.compress_size, info.file_size
    new_c = int(csize * factor) if info.compress_type == zipfile.ZIP_STORED else csize
    new_u = int(usize * factor)
    local = info.header_offset
    assert data[local : local + 4] == b"PK\x03\x04"
    struct.pack_into("<II", data, local + 18, new_c, new_u)
    pos = 0
    while True:
        pos = data.find(b"PK\x01\x02", pos)
        assert pos != -1
        (offset,) = struct.unpack_from("<I", data, pos + 42)
        if offset == local:
            break
        pos += 4
    struct.pack_into("<II", data, pos + 20, new_c, new_u)
    return bytes(data)


def post(client, headers, blob: bytes):
    return client.post(
        BOUNDARIES, headers=headers, files={"file": ("村界.zip", blob)}, data={"level": "village"}
    )


def test_understated_dbf_is_415(client, as_user, tmp_path: Path):
    blob = _understate(_villages_zip(tmp_path), ".dbf", 0.5)
    r = post(client, as_user("gis"), blob)
    assert r.status_code == 415, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == "unreadable_file" and ".dbf" in body["detail"]


def test_understated_deflated_member_is_415(client, as_user, tmp_path: Path):
    blob = _understate(_villages_zip(tmp_path, zipfile.ZIP_DEFLATED), ".dbf", 0.5)
    r = post(client, as_user("gis"), blob)
    assert r.status_code == 415, r.text
    assert r.json()["code"] == "unreadable_file"


def test_real_unpacked_size_is_what_counts(client, as_user, tmp_path: Path, monkeypatch):
    """Headers claiming a tiny .shp must not slip a bigger one past the unpacked-size limit."""
    from gridgov.imports import readers

    blob = _villages_zip(tmp_path, zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        real = sum(i.file_size for i in zf.infolist())
    lying = _understate(blob, ".shp", 0.01)
    calls: list[int | None] = []
    original = readers.extract_shapefile

    def spy(path, workdir, **kwargs):
        kwargs["max_unpacked_bytes"] = real - 10  # the claimed sizes are below this
        calls.append(kwargs["max_unpacked_bytes"])
        return original(path, workdir, **kwargs)

    monkeypatch.setattr(readers, "extract_shapefile", spy)
    r = post(client, as_user("gis"), lying)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["code"] in ("payload_too_large", "unreadable_file")
    assert calls, "the reader under test was not used"
    assert get_settings().limits.upload_max_bytes > real
