"""Tests of surfrec.io: every format round-trips, every bad input is one clear InputError."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import trimesh

from surfrec.errors import InputError
from surfrec.io import (
    MIN_POINTS,
    SUPPORTED_MESH_EXTENSIONS,
    SUPPORTED_POINT_EXTENSIONS,
    PointCloud,
    atomic_path,
    load_points,
    save_mesh,
    save_points,
)
from surfrec.pcd import PcdError, lzf_decompress

from optional_deps import require_open3d

# Coordinates away from the origin, like a real scan: checks nothing gets normalized.
OFFSET = np.array([12.0, -3.0, 40.0])


@pytest.fixture
def cloud() -> tuple[np.ndarray, np.ndarray]:
    """50 points (50, 3) around OFFSET and unit normals (50, 3)."""
    rng = np.random.default_rng(1)
    points = rng.normal(size=(50, 3)) + OFFSET
    normals = rng.normal(size=(50, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return points, normals


@pytest.fixture
def sphere() -> trimesh.Trimesh:
    """A closed sphere of radius 2 around OFFSET (642 vertices, 1280 faces)."""
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=2.0)
    mesh.apply_translation(OFFSET)
    return mesh


def _assert_same_point_sets(a: np.ndarray, b: np.ndarray, atol: float) -> None:
    """Assert that (N, 3) arrays hold the same points, in any order, up to ``atol``."""
    from scipy.spatial import cKDTree

    assert a.shape == b.shape
    assert cKDTree(b).query(a)[0].max() <= atol
    assert cKDTree(a).query(b)[0].max() <= atol


# --------------------------------------------------------------------------------------
# round trips of point formats


@pytest.mark.parametrize("ext", [".xyz", ".txt", ".csv", ".pts", ".ply", ".npy", ".npz"])
@pytest.mark.parametrize("with_normals", [False, True], ids=["points", "normals"])
def test_save_points_round_trip(tmp_path, cloud, ext, with_normals):
    points, normals = cloud
    path = tmp_path / f"cloud{ext}"
    assert save_points(path, points, normals if with_normals else None) == path
    pc = load_points(path)
    assert isinstance(pc, PointCloud)
    assert pc.source == os.fspath(path)
    assert pc.points.dtype == np.float64 and pc.points.shape == (50, 3)
    np.testing.assert_array_equal(pc.points, points)  # lossless (17 digits / float64)
    if with_normals:
        np.testing.assert_allclose(pc.normals, normals, rtol=0, atol=1e-12)
    else:
        assert pc.normals is None


def test_upper_case_extension(tmp_path, cloud):
    path = tmp_path / "SCAN.XYZ"
    save_points(path, cloud[0])
    np.testing.assert_array_equal(load_points(path).points, cloud[0])


def test_text_separators_comments_and_pts_count(tmp_path, cloud):
    points, normals = cloud
    rows = [", ".join(repr(float(v)) for v in row) for row in np.hstack([points, normals])]
    (tmp_path / "comma.xyz").write_text("# x, y, z, nx, ny, nz\n" + "\n".join(rows) + "\n")
    pc = load_points(tmp_path / "comma.xyz")
    np.testing.assert_array_equal(pc.points, points)
    np.testing.assert_allclose(pc.normals, normals, atol=1e-12)

    x, y, z = (map(repr, map(float, col)) for col in points.T)
    lines = [f"{a}\t{b}  {c}   # trailing comment" for a, b, c in zip(x, y, z)]
    text = "\n# a comment line\n\n" + "\n".join(lines) + "\n\n"
    (tmp_path / "tabs.txt").write_text(text)
    np.testing.assert_array_equal(load_points(tmp_path / "tabs.txt").points, points)

    body = "\n".join(" ".join(repr(float(v)) for v in row) for row in points)
    (tmp_path / "scan.pts").write_text(f"{len(points)}\n{body}\n")
    pc = load_points(tmp_path / "scan.pts")
    np.testing.assert_array_equal(pc.points, points)
    assert "point-count" in pc.format

    for name, newline in (("crlf.xyz", "\r\n"), ("cr.xyz", "\r")):
        (tmp_path / name).write_bytes(f"{len(points)}\n{body}".replace("\n", newline).encode())
        np.testing.assert_array_equal(load_points(tmp_path / name).points, points)

    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + body.replace(" ", ",").encode())
    np.testing.assert_array_equal(load_points(tmp_path / "bom.csv").points, points)


def test_pts_count_line_that_disagrees_warns(tmp_path, cloud, caplog):
    body = "\n".join(" ".join(repr(float(v)) for v in row) for row in cloud[0])
    (tmp_path / "scan.pts").write_text(f"7\n{body}\n")
    with caplog.at_level(logging.WARNING, logger="surfrec.io"):
        assert len(load_points(tmp_path / "scan.pts")) == 50
    assert "says 7 points" in caplog.text


def _ply_header(fmt: str, n: int, props: list[str], faces: int | None = None) -> bytes:
    lines = ["ply", f"format {fmt} 1.0", "comment test", f"element vertex {n}"]
    lines += [f"property {p}" for p in props]
    if faces is not None:
        lines += [f"element face {faces}", "property list uchar int vertex_indices"]
    return ("\n".join(lines + ["end_header"]) + "\n").encode()


@pytest.mark.parametrize("endian", ["<", ">"], ids=["little", "big"])
@pytest.mark.parametrize("with_normals", [False, True], ids=["points", "normals"])
def test_binary_ply_float32_both_endians(tmp_path, cloud, endian, with_normals):
    points, normals = cloud
    names = ["x", "y", "z"] + (["nx", "ny", "nz"] if with_normals else [])
    arr = np.empty(len(points), dtype=[(n, endian + "f4") for n in names])
    table = np.hstack([points, normals]) if with_normals else points
    for j, n in enumerate(names):
        arr[n] = table[:, j]
    fmt = "binary_little_endian" if endian == "<" else "binary_big_endian"
    path = tmp_path / "cloud.ply"
    path.write_bytes(_ply_header(fmt, len(points), [f"float {n}" for n in names]) + arr.tobytes())
    pc = load_points(path)
    np.testing.assert_array_equal(pc.points, points.astype(np.float32))
    if with_normals:
        np.testing.assert_allclose(pc.normals, normals, atol=1e-6)
    else:
        assert pc.normals is None


@pytest.mark.parametrize("with_normals", [False, True], ids=["points", "normals"])
def test_ascii_ply_by_hand(tmp_path, cloud, with_normals):
    points, normals = cloud
    table = np.hstack([points, normals]) if with_normals else points
    names = ["x", "y", "z"] + (["nx", "ny", "nz"] if with_normals else [])
    # an extra property (intensity) in the middle must not confuse the reader
    props = [f"double {n}" for n in names[:3]] + ["uchar intensity"]
    props += [f"double {n}" for n in names[3:]]
    rows = []
    for row in table:
        values = [repr(float(v)) for v in row]
        rows.append(" ".join(values[:3] + ["7"] + values[3:]))
    path = tmp_path / "ascii.ply"
    path.write_bytes(_ply_header("ascii", len(points), props) + ("\n".join(rows) + "\n").encode())
    pc = load_points(path)
    np.testing.assert_array_equal(pc.points, points)
    if with_normals:
        np.testing.assert_allclose(pc.normals, normals, atol=1e-12)
    else:
        assert pc.normals is None
    assert pc.format == "ply ascii"


@pytest.mark.parametrize("ascii", [False, True], ids=["binary", "ascii"])
def test_ply_written_by_open3d(tmp_path, cloud, ascii):
    o3d = require_open3d()
    points, normals = cloud
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    pcd.normals = o3d.utility.Vector3dVector(normals)
    path = tmp_path / "o3d.ply"
    assert o3d.io.write_point_cloud(os.fspath(path), pcd, write_ascii=ascii)
    pc = load_points(path)
    # open3d writes ascii PLY with 6 significant digits
    np.testing.assert_allclose(pc.points, points, rtol=1e-5 if ascii else 1e-7)
    np.testing.assert_allclose(pc.normals, normals, atol=1e-5)


@pytest.mark.parametrize("data", ["ascii", "binary", "binary_compressed"])
@pytest.mark.parametrize("with_normals", [False, True], ids=["points", "normals"])
def test_pcd_written_by_open3d(tmp_path, cloud, data, with_normals):
    o3d = require_open3d()
    points, normals = cloud
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    if with_normals:
        pcd.normals = o3d.utility.Vector3dVector(normals)
    path = tmp_path / "cloud.pcd"
    assert o3d.io.write_point_cloud(
        os.fspath(path), pcd, write_ascii=data == "ascii", compressed=data == "binary_compressed"
    )
    pc = load_points(path)
    np.testing.assert_allclose(pc.points, points, rtol=1e-6)
    assert pc.format == f"pcd {data}"
    if with_normals:
        np.testing.assert_allclose(pc.normals, normals, atol=1e-5)
    else:
        assert pc.normals is None


def test_npy_and_npz_variants(tmp_path, cloud):
    points, normals = cloud
    np.save(tmp_path / "f32.npy", points.astype(np.float32))
    np.testing.assert_allclose(load_points(tmp_path / "f32.npy").points, points, rtol=1e-6)
    np.savez(tmp_path / "single.npz", arr_0=np.hstack([points, normals]))
    pc = load_points(tmp_path / "single.npz")
    np.testing.assert_array_equal(pc.points, points)
    np.testing.assert_allclose(pc.normals, normals, atol=1e-12)
    np.savez_compressed(tmp_path / "keys.npz", points=points, normals=normals, extra=np.ones(3))
    pc = load_points(tmp_path / "keys.npz")
    np.testing.assert_array_equal(pc.points, points)
    np.testing.assert_allclose(pc.normals, normals, atol=1e-12)


def test_normals_are_made_unit_length(tmp_path, cloud):
    points, normals = cloud
    save_points(tmp_path / "n.npy", points, 3.0 * normals)
    np.testing.assert_allclose(load_points(tmp_path / "n.npy").normals, normals, atol=1e-12)


@pytest.mark.parametrize("bad", ["nan", "zero"])
def test_unusable_normals_are_dropped_with_a_warning(tmp_path, cloud, caplog, bad):
    points, normals = cloud
    normals = normals.copy()
    normals[4] = np.nan if bad == "nan" else 0.0
    path = tmp_path / "n.xyz"
    save_points(path, points, normals)
    with caplog.at_level(logging.WARNING, logger="surfrec.io"):
        pc = load_points(path)
    assert pc.normals is None
    np.testing.assert_array_equal(pc.points, points)
    assert "ignoring the normals" in caplog.text and "n.xyz" in caplog.text


def test_from_arrays_validates():
    pts = np.zeros((20, 3)) + OFFSET
    pc = PointCloud.from_arrays(pts.astype(np.float32))
    assert pc.source == "<array>" and pc.points.dtype == np.float64 and len(pc) == 20
    with pytest.raises(InputError, match=r"^<array>: .*shape \(20, 2\)"):
        PointCloud.from_arrays(pts[:, :2])
    with pytest.raises(InputError, match="only 3 points"):
        PointCloud.from_arrays(pts[:3])


# --------------------------------------------------------------------------------------
# meshes as input


@pytest.mark.parametrize("ext", [".obj", ".off", ".stl", ".ply", ".glb"])
def test_mesh_vertices(tmp_path, sphere, ext):
    path = tmp_path / f"sphere{ext}"
    sphere.export(path)
    pc = load_points(path)
    assert pc.points.shape == sphere.vertices.shape
    atol = 1e-5 if ext in (".stl", ".glb", ".ply") else 1e-7  # float32 files
    _assert_same_point_sets(pc.points, np.asarray(sphere.vertices), atol)
    assert "mesh" in pc.format


@pytest.mark.parametrize("ext", [".obj", ".off", ".stl", ".ply", ".glb"])
def test_mesh_surface_samples(tmp_path, sphere, ext):
    path = tmp_path / f"sphere{ext}"
    sphere.export(path)
    pc = load_points(path, sample_surface=2000, seed=3)
    assert pc.points.shape == (2000, 3) and pc.normals.shape == (2000, 3)
    radius = np.linalg.norm(pc.points - OFFSET, axis=1)
    assert radius.max() <= 2.0 + 1e-4 and radius.min() > 1.97  # on the faceted sphere
    radial = (pc.points - OFFSET) / radius[:, None]
    assert np.einsum("ij,ij->i", radial, pc.normals).min() > 0.95  # outward face normals
    again = load_points(path, sample_surface=2000, seed=3)
    np.testing.assert_array_equal(again.points, pc.points)
    other = load_points(path, sample_surface=2000, seed=4)
    assert not np.array_equal(other.points, pc.points)


@pytest.mark.parametrize("encoding", ["ascii", "binary"])
def test_ply_with_quads_is_triangulated_for_sampling(tmp_path, encoding):
    box = trimesh.creation.box(extents=(2.0, 4.0, 6.0))
    box.apply_translation(OFFSET)
    v = box.vertices
    # one quad per side of the box (8 vertices, 6 quads), wound outwards
    quads = []
    for axis in range(3):
        for sign in (-1, 1):
            idx = np.flatnonzero(np.sign(v[:, axis] - OFFSET[axis]) == sign)
            others = [a for a in range(3) if a != axis]
            c = v[idx][:, others] - OFFSET[others]
            order = idx[np.argsort(np.arctan2(c[:, 1], c[:, 0]))]
            normal = np.cross(v[order[1]] - v[order[0]], v[order[2]] - v[order[1]])
            if normal[axis] * sign < 0:
                order = order[::-1]
            quads.append(order)
    # plus one triangle so that polygon sizes are mixed (a degenerate one: zero area)
    polys = [*quads, np.array([0, 0, 1])]
    if encoding == "ascii":
        rows = [" ".join(repr(float(c)) for c in p) for p in v]
        rows += [" ".join(str(i) for i in [len(q), *q]) for q in polys]
        body = ("\n".join(rows) + "\n").encode()
        fmt = "ascii"
    else:
        body = v.astype("<f8").tobytes()
        for q in polys:
            body += np.uint8(len(q)).tobytes() + np.asarray(q, "<i4").tobytes()
        fmt = "binary_little_endian"
    path = tmp_path / f"box_{encoding}.ply"
    props = ["double x", "double y", "double z"]
    path.write_bytes(_ply_header(fmt, 8, props, faces=len(polys)) + body)
    with pytest.raises(InputError, match="only 8 points"):
        load_points(path)  # the 8 corners alone are too few
    pc = load_points(path, sample_surface=3000)
    assert pc.points.shape == (3000, 3)
    rel = np.abs(pc.points - OFFSET) / np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(rel.max(axis=1), 1.0, atol=1e-9)  # all on the box
    # each side gets samples in proportion to its area (2x4, 2x6, 4x6: 8, 12, 24 of 88)
    side = np.argmax(rel, axis=1)
    fractions = np.bincount(side, minlength=3) / 3000
    np.testing.assert_allclose(fractions, np.array([24, 12, 8]) * 2 / 88, atol=0.03)
    assert np.allclose(np.abs(pc.normals[np.arange(3000), side]), 1.0)


def test_sampling_a_cloud_without_faces_warns_and_uses_points(tmp_path, cloud, caplog):
    save_points(tmp_path / "c.ply", cloud[0])
    with caplog.at_level(logging.WARNING, logger="surfrec.io"):
        pc = load_points(tmp_path / "c.ply", sample_surface=100)
    assert len(pc) == 50 and "no faces" in caplog.text


# --------------------------------------------------------------------------------------
# writing meshes and atomic_path


@pytest.mark.parametrize("ext", [".ply", ".obj", ".stl", ".off", ".glb"])
def test_save_mesh_round_trip(tmp_path, sphere, ext):
    path = tmp_path / "sub" / f"out{ext}"
    path.parent.mkdir()
    assert save_mesh(sphere, path) == path
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp left
    back = trimesh.load(path, force="mesh")
    assert len(back.faces) == len(sphere.faces)
    assert back.is_watertight
    np.testing.assert_allclose(back.volume, sphere.volume, rtol=1e-5)
    np.testing.assert_allclose(back.bounds, sphere.bounds, atol=1e-5)


def test_save_mesh_ply_keeps_float64_coordinates(tmp_path, sphere):
    far = sphere.copy()
    far.apply_translation([5.0e5, 4.0e6, 0.0])  # UTM-like coordinates
    save_mesh(far, tmp_path / "far.ply")
    back = load_points(tmp_path / "far.ply")
    np.testing.assert_array_equal(back.points, far.vertices)


def test_save_mesh_checks_before_any_work(tmp_path):
    target = tmp_path / "out.vtk"
    with pytest.raises(InputError, match=r"out\.vtk: unsupported mesh format '\.vtk'.*\.ply"):
        save_mesh(None, target)  # type: ignore[arg-type]  # the mesh is never touched
    with pytest.raises(InputError, match="does not exist"):
        save_mesh(None, tmp_path / "missing" / "out.ply")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_save_mesh_protects_the_input(tmp_path, sphere, monkeypatch):
    scan = tmp_path / "scan.ply"
    scan.write_bytes(b"original")
    monkeypatch.chdir(tmp_path)
    for spelling in (scan, "scan.ply", "./sub/../scan.ply"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(InputError, match="refusing to overwrite the input file"):
            save_mesh(sphere, spelling, protect=[scan])
    (tmp_path / "link.ply").symlink_to(scan)
    with pytest.raises(InputError, match="refusing"):
        save_mesh(sphere, tmp_path / "link.ply", protect=[os.fspath(scan)])
    assert scan.read_bytes() == b"original"
    save_mesh(sphere, tmp_path / "mesh.ply", protect=[scan])  # another name is fine


def test_atomic_path_success_and_mode(tmp_path):
    dest = tmp_path / "report.json"
    with atomic_path(dest) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".json" and tmp.exists()
        assert not dest.exists()
        tmp.write_text("{}")
    assert dest.read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666 & ~umask
    dest.chmod(0o640)
    with atomic_path(dest) as tmp:
        tmp.write_text("[]")
    assert dest.read_text() == "[]" and stat.S_IMODE(dest.stat().st_mode) == 0o640


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_atomic_path_leaves_nothing_on_exception(tmp_path, exc):
    dest = tmp_path / "model.pt"
    with pytest.raises(exc):
        with atomic_path(dest) as tmp:
            tmp.write_bytes(b"half written")
            raise exc("boom")
    assert list(tmp_path.iterdir()) == []
    dest.write_bytes(b"old")
    with pytest.raises(exc):
        with atomic_path(dest) as tmp:
            tmp.write_bytes(b"new")
            raise exc("boom")
    assert dest.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_atomic_path_bad_destinations(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        with atomic_path(tmp_path):
            pass
    with pytest.raises(InputError, match="does not exist"):
        with atomic_path(tmp_path / "no" / "x.txt"):
            pass


def test_save_points_rejects_bad_arguments(tmp_path, cloud):
    with pytest.raises(InputError, match="unsupported point format"):
        save_points(tmp_path / "c.pcd", cloud[0])
    with pytest.raises(InputError, match=r"shape \(50, 2\)"):
        save_points(tmp_path / "c.xyz", cloud[0][:, :2])
    with pytest.raises(InputError, match="normals have shape"):
        save_points(tmp_path / "c.xyz", cloud[0], cloud[1][:10])
    assert list(tmp_path.iterdir()) == []


def test_constants():
    assert MIN_POINTS == 10
    for ext in (".ply", ".xyz", ".pts", ".txt", ".csv", ".npy", ".npz", ".pcd", ".obj", ".off"):
        assert ext in SUPPORTED_POINT_EXTENSIONS
    assert set(SUPPORTED_MESH_EXTENSIONS) == {".ply", ".obj", ".stl", ".off", ".glb"}


# --------------------------------------------------------------------------------------
# bad inputs: each is one InputError whose single-line message names the file


def _xyz_lines(n: int) -> str:
    return "".join(f"{i}.5 {i % 3}.25 {40 + i}\n" for i in range(n))


def _good_binary_ply(n: int = 20) -> bytes:
    arr = np.arange(3 * n, dtype="<f4")
    return _ply_header("binary_little_endian", n, ["float x", "float y", "float z"]) + (
        arr.tobytes()
    )


def _write(content: bytes | str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)

    return make


def _pcd(path: Path, data: str = "binary", n: int = 20, truncate: int | None = None) -> None:
    """A binary PCD of ``n`` float32 points, written by hand (no open3d needed)."""
    pts = np.arange(3 * n, dtype="<f4").reshape(n, 3)
    path.write_bytes(
        "VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\n"
        f"WIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {data}\n".encode()
        + pts.tobytes()
    )
    if truncate is not None:
        path.write_bytes(path.read_bytes()[:truncate])


def _pcd_compressed(path: Path, packed: int, raw: int, body: bytes) -> None:
    header = ("VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 20\n"
              "HEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 20\nDATA binary_compressed\n")
    path.write_bytes(header.encode() + np.array([packed, raw], "<u4").tobytes() + body)


RNG_BYTES = np.random.default_rng(7).bytes(3000)

BAD_INPUTS: list[tuple[str, str, Callable[[Path], None] | None, str]] = [
    # (id, file name, how to make it (None: do not create), expected part of the message)
    ("missing", "nothere.xyz", None, "file not found"),
    ("directory", "folder.xyz", lambda p: p.mkdir(), "is a directory"),
    ("unknown-extension", "scan.vtk", _write("1 2 3\n"), "unsupported file type '.vtk'"),
    ("no-extension", "scan", _write("1 2 3\n"), "no file extension"),
    ("empty-xyz", "empty.xyz", _write(""), "contains no points"),
    ("comments-only", "comments.xyz", _write("# nothing\n\n# here\n"), "contains no points"),
    ("three-points", "three.xyz", _write(_xyz_lines(3)), "only 3 points; at least 10"),
    ("nine-points", "nine.csv", _write(_xyz_lines(9).replace(" ", ",")), "only 9 points"),
    (
        "nan",
        "nan.xyz",
        _write(_xyz_lines(10) + "nan 1 2\n1 inf 2\n" + _xyz_lines(8)),
        "2 of 20 points have NaN/inf coordinates",
    ),
    ("text-in-column", "text.xyz", _write(_xyz_lines(12) + "1 2 abc\n"), "line 13: 'abc' is not"),
    ("csv-header", "head.csv", _write("x,y,z\n" + _xyz_lines(12)), "'x' is not a number"),
    ("four-columns", "four.xyz", _write("1 2 3 4\n" * 12), "line 1 has 4 columns; expected 3"),
    ("ragged", "ragged.txt", _write(_xyz_lines(12) + "1 2\n"), "line 13 has 2 columns, expected"),
    ("binary-as-text", "garbage.xyz", _write(RNG_BYTES), "binary file"),
    ("pts-count-only", "count.pts", _write("120\n"), "no points"),
    ("empty-ply", "empty.ply", _write(b""), "is empty"),
    ("not-ply", "notply.ply", _write(b"PK\x03\x04" + RNG_BYTES), "not a PLY file"),
    ("garbled-ply", "garbled.ply", _write(b"ply\n" + RNG_BYTES), "end_header"),
    (
        "header-only-ply",
        "header.ply",
        _write(_ply_header("binary_little_endian", 100, ["float x", "float y", "float z"])),
        "truncated",
    ),
    (
        "header-only-ply-0",
        "header0.ply",
        _write(_ply_header("ascii", 0, ["float x", "float y", "float z"])),
        "contains no points",
    ),
    ("truncated-ply", "trunc.ply", _write(_good_binary_ply()[:-7]), "truncated"),
    (
        "count-too-large",
        "count.ply",
        _write(_good_binary_ply().replace(b"vertex 20", b"vertex 90")),
        "truncated: the header declares 90 'vertex' elements but the data end at row 20",
    ),
    (
        "missing-z",
        "noz.ply",
        _write(_ply_header("ascii", 12, ["float x", "float y"]) + b"1 2\n" * 12),
        "no z property",
    ),
    (
        "bad-header-line",
        "badline.ply",
        _write(_good_binary_ply().replace(b"comment test", b"colour blue!")),
        "bad PLY header (line 3: expected one of {element, comment, obj_info, end_header})",
    ),
    (
        "unknown-type",
        "type.ply",
        _write(_good_binary_ply().replace(b"float z", b"quad z")),
        "bad PLY header (line 7: field type 'quad' not in",
    ),
    (
        "ascii-ply-text",
        "atext.ply",
        _write(_ply_header("ascii", 12, ["float x", "float y", "float z"]) + b"1 2 3\n" * 11
               + b"1 two 3\n"),
        "PLY 'vertex' row 12, property 'y': malformed input",
    ),
    (
        "ascii-ply-truncated",
        "atrunc.ply",
        _write(_ply_header("ascii", 12, ["float x", "float y", "float z"]) + b"1 2 3\n" * 5),
        "declares 12 'vertex' elements but the data end at row 5",
    ),
    (
        "ply-nan",
        "nan.ply",
        _write(_good_binary_ply().replace(np.float32(4).tobytes(), np.float32(np.inf).tobytes())),
        "1 of 20 points have NaN/inf",
    ),
    ("npy-garbage", "bad.npy", _write(RNG_BYTES), "not an NPY file"),
    (
        "npy-objects",
        "obj.npy",
        lambda p: np.save(p, np.array([[1, 2, None]] * 12), allow_pickle=True),
        "holds Python objects",
    ),
    ("npy-truncated", "trunc.npy", lambda p: _truncated_npy(p), "not a readable NPY"),
    ("npy-4-columns", "four.npy", lambda p: np.save(p, np.ones((12, 4))), "shape (12, 4)"),
    ("npy-1d", "flat.npy", lambda p: np.save(p, np.ones(36)), "shape (36,)"),
    ("npy-strings", "str.npy", lambda p: np.save(p, np.full((12, 3), "a")), "not numeric"),
    ("npy-empty", "empty.npy", lambda p: np.save(p, np.zeros((0, 3))), "contains no points"),
    ("npz-garbage", "bad.npz", _write(RNG_BYTES), "not an NPZ archive"),
    ("npz-truncated", "trunc.npz", lambda p: _truncated_npz(p), "not a readable NPZ"),
    (
        "npz-keys",
        "keys.npz",
        lambda p: np.savez(p, a=np.ones((12, 3)), b=np.ones((12, 3))),
        "expected 'points'",
    ),
    ("pcd-garbage", "bad.pcd", _write(RNG_BYTES), "not a PCD file"),
    ("pcd-empty", "empty.pcd", _write(""), "not a PCD file"),
    ("pcd-zero", "zero.pcd", lambda p: _pcd_text(p, 0, ""), "contains no points"),
    ("pcd-truncated", "trunc.pcd", lambda p: _pcd(p, "binary", truncate=200),
     "truncated: 20 points need 240 bytes of data"),
    ("pcd-lzf-sizes", "sizes.pcd", lambda p: _pcd_compressed(p, 500, 240, RNG_BYTES[:100]),
     "truncated or garbled compressed data"),
    ("pcd-lzf-garbled", "lzf.pcd", lambda p: _pcd_compressed(p, 100, 240, RNG_BYTES[:100]),
     "garbled compressed data"),
    ("pcd-no-z", "noz.pcd", _write("FIELDS x y\nSIZE 4 4\nTYPE F F\nCOUNT 1 1\nPOINTS 12\n"
                                   "DATA ascii\n" + "1 2\n" * 12), "PCD file has no z field"),
    ("pcd-all-nan", "nan.pcd", lambda p: _pcd_text(p, 12, "nan nan nan\n" * 12), "all 12 points have NaN/inf"),
    ("obj-empty", "empty.obj", _write(""), "contains no points"),
    ("obj-text", "text.obj", _write("hello world\n" * 20), "contains no points"),
    ("stl-garbage", "bad.stl", _write(RNG_BYTES[:500]), "garbled or not a valid STL file"),
    ("glb-garbage", "bad.glb", _write(RNG_BYTES), "cannot read the GLB file"),
    ("off-garbled", "bad.off", _write("OFF\n3 1 0\n0 0 0\n1 0\n"), "cannot read the OFF"),
    ("off-few", "few.off", _write("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"), "only 3 points"),
]


def _truncated_npy(path: Path) -> None:
    np.save(path, np.ones((100, 3)))
    path.write_bytes(path.read_bytes()[:300])


def _truncated_npz(path: Path) -> None:
    np.savez(path, points=np.ones((100, 3)))
    path.write_bytes(path.read_bytes()[:300])


def _pcd_text(path: Path, n: int, rows: str) -> None:
    path.write_text(
        "VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\n"
        f"WIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA ascii\n{rows}"
    )


def _pcd_with_nan(path: Path) -> None:
    rows = "".join(f"{i} {i + 1} {i + 2}\n" for i in range(19))
    _pcd_text(path, 20, rows + "nan 1 2\n")


@pytest.mark.parametrize(
    ("name", "make", "expected"), [case[1:] for case in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_is_one_line_input_error(tmp_path, capfd, name, make, expected):
    path = tmp_path / name
    if make is not None:
        make(path)
    capfd.readouterr()
    with pytest.raises(InputError) as info:
        load_points(path)
    message = str(info.value)
    assert message.startswith(os.fspath(path) + ": ")
    assert "\n" not in message and "\r" not in message
    assert expected in message, message
    # nothing printed behind our back (open3d writes to the C-level stdout/stderr)
    assert capfd.readouterr() == ("", "")


def test_bad_faces_when_sampling(tmp_path):
    v = np.arange(36, dtype="<f4").tobytes()
    faces = np.uint8(3).tobytes() + np.array([0, 1, 99], "<i4").tobytes()
    path = tmp_path / "faces.ply"
    path.write_bytes(_ply_header("binary_little_endian", 12, ["float x", "float y", "float z"],
                                 faces=1) + v + faces)
    assert len(load_points(path)) == 12  # the vertices alone are fine
    with pytest.raises(InputError, match="a face refers to vertex 99 but there are 12"):
        load_points(path, sample_surface=100)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(InputError, match="faces.ply: truncated"):
        load_points(path, sample_surface=100)


@pytest.mark.parametrize("count", [0, -5, 2.5, True])
def test_bad_sample_count(tmp_path, sphere, count):
    sphere.export(tmp_path / "s.obj")
    with pytest.raises(InputError, match="sample_surface"):
        load_points(tmp_path / "s.obj", sample_surface=count)


def test_pcd_nan_points_are_dropped_with_a_warning(tmp_path, caplog):
    # organized depth-sensor clouds mark missing pixels with NaN: not an error for PCD
    path = tmp_path / "nan.pcd"
    _pcd_with_nan(path)
    with caplog.at_level("WARNING"):
        pc = load_points(path)
    assert pc.points.shape == (19, 3) and np.isfinite(pc.points).all()
    assert "dropped 1 of 20 points" in caplog.text and "nan.pcd" in caplog.text


def test_lzf_decompress_literals_and_overlapping_references():
    # literal run "abc" (ctrl 2), then a back reference of length 7 at distance 3
    # (ctrl = (7 - 2) << 5 | 0, offset byte 2): an overlapping copy repeating "abc"
    data = bytes([2]) + b"abc" + bytes([(5 << 5) | 0, 2])
    assert lzf_decompress(data, 10) == b"abcabcabca"
    with pytest.raises(PcdError, match="out of range"):
        lzf_decompress(bytes([0]) + b"a" + bytes([(1 << 5), 5]), 4)
    with pytest.raises(PcdError, match="3 of 5 bytes"):
        lzf_decompress(bytes([2]) + b"abc", 5)


@pytest.mark.shared_data
def test_milk_carton_pcd_matches_open3d():
    """The real binary_compressed (LZF, rgba) scan: same points as open3d's reader."""
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "scans" / "milk_carton.pcd"
    if not path.exists():
        path = Path("/work/shared/data/scans/milk_carton.pcd")
    if not path.exists():
        pytest.skip("shared data not available")
    o3d = require_open3d()
    pc = load_points(path)
    want = np.asarray(o3d.io.read_point_cloud(os.fspath(path)).points)
    assert pc.format == "pcd binary_compressed" and len(pc) == len(want) == 12575
    np.testing.assert_array_equal(pc.points, want)


def test_save_mesh_writes_vertex_attributes(tmp_path, sphere):
    """mesh.vertex_attributes (e.g. a float32 "quality") become PLY vertex properties that
    plyfile, trimesh and open3d read back."""
    import plyfile

    quality = np.linspace(0.0, 1.0, len(sphere.vertices), dtype=np.float32)
    sphere.vertex_attributes["quality"] = quality
    sphere.vertex_attributes["label"] = (np.arange(len(sphere.vertices)) % 7).astype(np.int32)
    sphere.vertex_attributes["rgb"] = np.ones((len(sphere.vertices), 3), dtype=np.uint8)
    sphere.vertex_attributes["wrong_length"] = np.ones(5)
    path = save_mesh(sphere, tmp_path / "q.ply")

    ply = plyfile.PlyData.read(os.fspath(path))
    vertex = ply["vertex"].data
    assert vertex.dtype["quality"] == np.dtype("<f4") and vertex.dtype["label"] == np.dtype("<i4")
    np.testing.assert_array_equal(vertex["quality"], quality)
    np.testing.assert_array_equal(vertex["rgb_2"], 1)
    assert "wrong_length" not in vertex.dtype.names
    np.testing.assert_array_equal(np.column_stack([vertex[c] for c in "xyz"]), sphere.vertices)

    back = trimesh.load(path, process=False)
    np.testing.assert_array_equal(back.faces, sphere.faces)
    # trimesh 5 keeps extra vertex properties in its raw PLY table
    np.testing.assert_array_equal(back.metadata["_ply_raw"]["vertex"]["data"]["quality"], quality)
    assert len(load_points(path)) == len(sphere.vertices)

    o3d = require_open3d()
    m = o3d.io.read_triangle_mesh(os.fspath(path))
    np.testing.assert_allclose(np.asarray(m.vertices), sphere.vertices)
    np.testing.assert_array_equal(np.asarray(m.triangles), sphere.faces)
