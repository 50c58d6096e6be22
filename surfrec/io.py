"""Point clouds and meshes in and out, chosen by file extension.

Reading
    :func:`load_points` reads a point cloud (optionally with normals) from PLY, XYZ/PTS/TXT/CSV
    text, NPY/NPZ, PCD, or a mesh (PLY/OBJ/OFF/STL/GLB: its vertices, or samples on its
    surface). Every problem a user can cause with a bad file is reported as one
    :class:`~surfrec.errors.InputError` naming the file: nothing from numpy, open3d or
    trimesh escapes as a raw traceback.

Writing
    :func:`save_mesh` and :func:`save_points` write by extension, atomically: the data go to
    a temporary file in the destination folder that is renamed onto the destination only once
    it is complete (:func:`atomic_path`, which other modules use for their own outputs).
"""

from __future__ import annotations

import contextlib
import io as _stdio
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from .errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import trimesh

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

#: A point cloud with fewer points than this is rejected by :func:`load_points`.
MIN_POINTS = 10

_TEXT_EXTENSIONS = (".xyz", ".pts", ".txt", ".csv")
_TRIMESH_EXTENSIONS = (".obj", ".off", ".stl", ".glb")

#: Extensions :func:`load_points` reads (case-insensitive).
SUPPORTED_POINT_EXTENSIONS: tuple[str, ...] = (
    ".ply",
    *_TEXT_EXTENSIONS,
    ".npy",
    ".npz",
    ".pcd",
    *_TRIMESH_EXTENSIONS,
)

#: Extensions :func:`save_mesh` writes (case-insensitive).
SUPPORTED_MESH_EXTENSIONS: tuple[str, ...] = (".ply", ".obj", ".stl", ".off", ".glb")

#: Extensions :func:`save_points` writes (case-insensitive).
SAVE_POINT_EXTENSIONS: tuple[str, ...] = (".xyz", ".txt", ".pts", ".csv", ".ply", ".npy", ".npz")

# Normals shorter than this are treated as missing (zero length).
_MIN_NORMAL_LENGTH = 1e-12


@dataclass
class PointCloud:
    """A point cloud in its own (input) coordinates.

    Attributes
    ----------
    points : (N, 3) float64
        Point coordinates, all finite; ``N >= MIN_POINTS`` when made by :func:`load_points`.
    normals : (N, 3) float64 or None
        Unit normals, or None when the input has none (or had unusable ones).
    source : str
        The path the cloud was read from, or ``"<array>"``.
    format : str
        A short description of what was read, e.g. ``"ply binary_little_endian"`` or
        ``"stl mesh, 5000 surface samples"``; ``"array"`` for clouds made from arrays.
    """

    points: np.ndarray
    normals: np.ndarray | None
    source: str
    format: str = "array"

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @classmethod
    def from_arrays(
        cls,
        points: Any,
        normals: Any = None,
        source: PathLike | None = None,
        format: str = "array",
    ) -> PointCloud:
        """Validate arrays and wrap them, with the same checks as :func:`load_points`.

        Parameters
        ----------
        points : (N, 3) array_like of float
        normals : (N, 3) array_like of float, optional
            Rows with NaN/inf or zero length make the whole array be dropped (with a
            logged warning); the others are scaled to unit length.
        source : path or None
            Named in error messages; None means ``"<array>"``.
        format : str
            Stored in :attr:`format`.

        Returns
        -------
        PointCloud

        Raises
        ------
        InputError
            Wrong shape, no points, NaN/inf coordinates, or fewer than :data:`MIN_POINTS`.
        """
        src = "<array>" if source is None else os.fspath(source)
        pts = _validate_points(points, src)
        nrm = None if normals is None else _validate_normals(normals, pts.shape[0], src)
        return cls(points=pts, normals=nrm, source=src, format=format)


# --------------------------------------------------------------------------------------
# validation shared by every reader


def _as_float_array(a: Any, source: str, what: str) -> np.ndarray:
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise InputError(source, f"{what} cannot be made into an array ({exc})") from None
    if arr.dtype.kind not in "fiu":
        raise InputError(source, f"{what} are not numeric (dtype {arr.dtype})")
    return arr.astype(np.float64, copy=False)


def _validate_points(points: Any, source: str) -> np.ndarray:
    """Return ``points`` as a finite (N, 3) float64 array with N >= MIN_POINTS, or raise."""
    pts = _as_float_array(points, source, "points")
    if pts.ndim != 2 or pts.shape[1] != 3:
        if pts.size == 0:
            raise InputError(source, "contains no points")
        raise InputError(source, f"points must be an (N, 3) array, got shape {pts.shape}")
    n = pts.shape[0]
    if n == 0:
        raise InputError(source, "contains no points")
    bad = ~np.isfinite(pts).all(axis=1)
    n_bad = int(bad.sum())
    if n_bad:
        raise InputError(source, f"{n_bad} of {n} points have NaN/inf coordinates")
    if n < MIN_POINTS:
        raise InputError(source, f"has only {n} points; at least {MIN_POINTS} are needed")
    return np.ascontiguousarray(pts)


def _validate_normals(normals: Any, n_points: int, source: str) -> np.ndarray | None:
    """Return unit normals (n_points, 3), or None (with a warning) when any is unusable."""
    nrm = _as_float_array(normals, source, "normals")
    if nrm.shape != (n_points, 3):
        raise InputError(
            source, f"normals have shape {nrm.shape}, expected ({n_points}, 3) like the points"
        )
    n_nonfinite = int((~np.isfinite(nrm).all(axis=1)).sum())
    length = np.linalg.norm(np.where(np.isfinite(nrm), nrm, 0.0), axis=1)
    n_zero = int(((length < _MIN_NORMAL_LENGTH) & np.isfinite(nrm).all(axis=1)).sum())
    if n_nonfinite or n_zero:
        log.warning(
            "%s: ignoring the normals (%d NaN/inf, %d of zero length, of %d)",
            source,
            n_nonfinite,
            n_zero,
            n_points,
        )
        return None
    return np.ascontiguousarray(nrm / length[:, None])


# --------------------------------------------------------------------------------------
# loading


def load_points(
    path: PathLike, *, sample_surface: int | None = None, seed: int = 0
) -> PointCloud:
    """Read a point cloud from a file, choosing the reader by extension.

    Parameters
    ----------
    path : str or os.PathLike
        A file with one of :data:`SUPPORTED_POINT_EXTENSIONS` (case-insensitive):

        - ``.ply``: ascii or binary (either endianness); ``x y z`` and optional
          ``nx ny nz`` vertex properties. A PLY with faces is a mesh (see below).
        - ``.xyz .pts .txt .csv``: 3 (x y z) or 6 (x y z nx ny nz) numeric columns,
          separated by spaces, tabs or commas; ``#`` starts a comment; a first line
          holding only an integer (the PTS point count) is skipped.
        - ``.npy``: an (N, 3) or (N, 6) array. ``.npz``: arrays ``points`` and optional
          ``normals``, or a single (N, 3)/(N, 6) array.
        - ``.pcd``: ascii, binary or binary_compressed (:mod:`surfrec.pcd`).
        - ``.obj .off .stl .glb``: meshes, read with trimesh.
    sample_surface : int, optional
        For meshes: return this many points sampled uniformly (by area) on the surface,
        with the normals of the faces they lie on, instead of the vertices. Ignored,
        with a warning, for files that have no faces.
    seed : int
        Seed of the surface sampling.

    Returns
    -------
    PointCloud
        ``points`` (N, 3) float64 in the file's coordinates; ``normals`` (N, 3) unit
        float64 or None. Mesh vertices come without normals unless a PLY stores them.

    Raises
    ------
    InputError
        The file is missing, a directory, of an unsupported type, unreadable, garbled or
        truncated; has non-numeric values, no points, fewer than :data:`MIN_POINTS`, or
        NaN/inf coordinates. Unusable normals (NaN or zero length) are not an error: they
        are dropped with a logged warning.
    """
    p = Path(path)
    src = os.fspath(path)
    ext = _check_readable(p, src)
    if sample_surface is not None:
        if isinstance(sample_surface, bool) or not isinstance(sample_surface, (int, np.integer)):
            raise InputError(src, f"sample_surface must be an integer, got {sample_surface!r}")
        if sample_surface < 1:
            raise InputError(src, f"sample_surface must be positive, got {sample_surface}")
        sample_surface = int(sample_surface)

    if ext == ".ply":
        points, normals, fmt = _load_ply(p, src, sample_surface, seed)
    elif ext in _TEXT_EXTENSIONS:
        points, normals, fmt = _load_text(p, src)
    elif ext == ".npy":
        points, normals, fmt = _load_npy(p, src)
    elif ext == ".npz":
        points, normals, fmt = _load_npz(p, src)
    elif ext == ".pcd":
        points, normals, fmt = _load_pcd(p, src)
    else:  # one of _TRIMESH_EXTENSIONS (checked by _check_readable)
        points, normals, fmt = _load_trimesh(p, src, ext, sample_surface, seed)

    cloud = PointCloud.from_arrays(points, normals, source=src, format=fmt)
    log.debug("%s: read %d points (%s)", src, len(cloud), fmt)
    return cloud


def _check_readable(p: Path, src: str) -> str:
    """Raise InputError unless ``p`` is an existing file with a supported extension."""
    if not p.exists():
        raise InputError(src, "file not found")
    if p.is_dir():
        raise InputError(src, "is a directory, not a file")
    ext = p.suffix.lower()
    if ext not in SUPPORTED_POINT_EXTENSIONS:
        what = f"unsupported file type '{p.suffix}'" if ext else "no file extension"
        raise InputError(src, f"{what}; supported: {' '.join(SUPPORTED_POINT_EXTENSIONS)}")
    if not os.access(p, os.R_OK):
        raise InputError(src, "cannot read the file (permission denied)")
    return ext


def _read_bytes(p: Path, src: str) -> bytes:
    try:
        return p.read_bytes()
    except OSError as exc:
        raise InputError(src, f"cannot read the file ({exc.strerror or exc})") from None


def _short(token: str | bytes, limit: int = 30) -> str:
    """repr() of a token, cut to ``limit`` characters, for error messages."""
    if isinstance(token, bytes):
        token = token.decode("utf-8", errors="replace")
    return repr(token if len(token) <= limit else token[:limit] + "...")


def _split_columns(points_and_more: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if points_and_more.shape[1] == 6:
        return points_and_more[:, :3], points_and_more[:, 3:]
    return points_and_more[:, :3], None


# ---- text: XYZ / PTS / TXT / CSV -----------------------------------------------------
# numpy's loadtxt parses; the sniffing around it (delimiter, PTS count line, 3 or 6
# columns) and the diagnosis of a failure (which line, which token) are the error
# contract of the hostile-input corpus (tests/test_io.py): loadtxt alone reports neither.


def _data_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, content without comment and surrounding blanks), lazily."""
    start, lineno, size = 0, 0, len(text)
    while start < size:
        end = text.find("\n", start)
        if end < 0:
            end = size
        lineno += 1
        content = text[start:end].split("#", 1)[0].strip()
        if content:
            yield lineno, content
        start = end + 1


def _tokens(content: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        return content.split()
    return [t.strip() for t in content.split(delimiter)]


def _load_text(p: Path, src: str) -> tuple[np.ndarray, np.ndarray | None, str]:
    data = _read_bytes(p, src)
    if b"\x00" in data[:65536]:
        raise InputError(src, "looks like a binary file, not a text list of points")
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")  # drop a BOM
    if "\n" not in text:  # old Mac line ends (\r only); \r\n is read as it is
        text = text.replace("\r", "\n")

    # Sniff the first data lines: delimiter, PTS count line, number of columns.
    lines = _data_lines(text)
    first = next(lines, None)
    if first is None:
        raise InputError(src, "contains no points")
    delimiter = "," if "," in first[1] else None
    skip = 0  # physical lines np.loadtxt must skip
    declared: int | None = None
    toks = _tokens(first[1], delimiter)
    if len(toks) == 1 and toks[0].isdigit():
        declared, skip = int(toks[0]), first[0]
        first = next(lines, None)
        if first is None:
            raise InputError(src, "contains no points (only a point-count line)")
        toks = _tokens(first[1], delimiter)
    ncols = len(toks)
    if ncols not in (3, 6):
        raise InputError(
            src,
            f"line {first[0]} has {ncols} columns; expected 3 (x y z) or 6 (x y z nx ny nz)",
        )

    try:
        table = np.loadtxt(
            _stdio.StringIO(text),
            dtype=np.float64,
            delimiter=delimiter,
            comments="#",
            skiprows=skip,
            ndmin=2,
        )
    except ValueError as exc:
        raise InputError(src, _diagnose_text(text, delimiter, ncols, skip, exc)) from None
    if table.shape[1] != ncols:  # cannot happen after the checks above, but be sure
        raise InputError(src, f"has {table.shape[1]} columns; expected {ncols}")
    if declared is not None and declared != table.shape[0]:
        log.warning(
            "%s: the first line says %d points but the file has %d", src, declared, table.shape[0]
        )
    kind = p.suffix.lower().lstrip(".")
    sep = "comma" if delimiter == "," else "whitespace"
    fmt = f"{kind} text, {ncols} columns, {sep}-separated"
    if declared is not None:
        fmt += ", with a point-count line"
    points, normals = _split_columns(table)
    return points, normals, fmt


def _diagnose_text(
    text: str, delimiter: str | None, ncols: int, skip: int, exc: Exception
) -> str:
    """Find the first bad line of a text point file and describe it (slow; errors only)."""
    for lineno, content in _data_lines(text):
        if lineno <= skip:
            continue
        toks = _tokens(content, delimiter)
        if len(toks) != ncols:
            return f"line {lineno} has {len(toks)} columns, expected {ncols}"
        for tok in toks:
            try:
                float(tok)
            except ValueError:
                hint = " (header lines must start with '#')" if lineno <= skip + 1 else ""
                return f"line {lineno}: {_short(tok)} is not a number{hint}"
    return f"cannot parse the file ({str(exc).splitlines()[0]})"


# ---- NPY / NPZ ------------------------------------------------------------------------
# np.load reads; the signature and pickle checks give the corpus' one-line errors
# (np.load's own are multi-line or name allow_pickle, which users do not set).


def _table_from_array(arr: Any, src: str, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    a = np.asarray(arr)
    if a.dtype.kind not in "fiu":
        raise InputError(src, f"{what} is not numeric (dtype {a.dtype})")
    if a.ndim != 2 or a.shape[1] not in (3, 6):
        if a.size == 0:
            raise InputError(src, "contains no points")
        raise InputError(src, f"{what} has shape {a.shape}; expected (N, 3) or (N, 6)")
    return _split_columns(a.astype(np.float64, copy=False))


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_HINT = "holds Python objects (pickled data), not a numeric array"


def _file_starts_with(p: Path, magic: bytes, src: str) -> bool:
    try:
        with open(p, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError as exc:
        raise InputError(src, f"cannot read the file ({exc.strerror or exc})") from None


def _load_npy(p: Path, src: str) -> tuple[np.ndarray, np.ndarray | None, str]:
    if not _file_starts_with(p, _NPY_MAGIC, src):
        raise InputError(src, "not an NPY file (it does not start with the NPY signature)")
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        if "allow_pickle" in str(exc):
            raise InputError(src, _PICKLE_HINT) from None
        raise InputError(src, f"not a readable NPY array ({_first_line(exc)})") from None
    if not isinstance(arr, np.ndarray):
        raise InputError(src, "is not an NPY array file")
    points, normals = _table_from_array(arr, src, "the array")
    return points, normals, f"npy array {arr.shape}"


def _load_npz(p: Path, src: str) -> tuple[np.ndarray, np.ndarray | None, str]:
    if not _file_starts_with(p, _ZIP_MAGIC, src):
        raise InputError(src, "not an NPZ archive (it is not a zip file)")
    try:
        with np.load(p, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise InputError(src, "is not an NPZ archive")
            keys = list(archive.files)
            if "points" in keys:
                points, normals = _table_from_array(archive["points"], src, "'points'")
                if "normals" in keys:
                    if normals is not None:
                        log.warning("%s: using 'normals', not columns 4-6 of 'points'", src)
                    normals = _as_float_array(archive["normals"], src, "'normals'")
                fmt = "npz arrays " + ", ".join(k for k in ("points", "normals") if k in keys)
            elif len(keys) == 1:
                points, normals = _table_from_array(archive[keys[0]], src, f"'{keys[0]}'")
                fmt = f"npz array '{keys[0]}'"
            else:
                raise InputError(
                    src,
                    f"has arrays {keys}; expected 'points' (and optionally 'normals') "
                    "or a single array",
                )
    except InputError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError, EOFError, ...
        if "allow_pickle" in str(exc):
            raise InputError(src, _PICKLE_HINT) from None
        raise InputError(src, f"not a readable NPZ archive ({_first_line(exc)})") from None
    return points, normals, fmt


def _first_line(exc: BaseException, limit: int = 120) -> str:
    """The first line (or sentence) of an exception's message, for wrapping it in ours."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    text = text.split(". ")[0].rstrip(".")
    return text if len(text) <= limit else text[:limit] + "..."


# ---- PCD (surfrec.pcd) ---------------------------------------------------------------


def _load_pcd(p: Path, src: str) -> tuple[np.ndarray, np.ndarray | None, str]:
    from .pcd import PcdError, read_pcd  # no open3d: its wheel needs libusb (see pcd.py)

    try:
        fields, kind = read_pcd(_read_bytes(p, src))
    except PcdError as exc:
        raise InputError(src, str(exc)) from None
    except (ValueError, IndexError, TypeError) as exc:  # e.g. a non-integer POINTS count
        raise InputError(src, f"cannot read the PCD file ({_first_line(exc)})") from None
    missing = [c for c in "xyz" if c not in fields]
    if missing:
        raise InputError(src, f"PCD file has no {'/'.join(missing)} field")
    points = np.column_stack([np.asarray(fields[c], dtype=np.float64) for c in "xyz"])
    if points.shape[0] == 0:
        raise InputError(src, "contains no points")
    normals = None
    if all(f"normal_{c}" in fields for c in "xyz"):
        normals = np.column_stack([np.asarray(fields[f"normal_{c}"], dtype=np.float64) for c in "xyz"])
    # depth sensors write organized clouds with NaN where a pixel has no depth (PCL's
    # "is_dense false"): those points are missing data, not a broken file
    finite = np.isfinite(points).all(axis=1)
    if not finite.all():
        if not finite.any():
            raise InputError(src, f"all {len(points)} points have NaN/inf coordinates")
        log.warning("%s: dropped %d of %d points with NaN/inf coordinates (missing depth in a PCD cloud)",
                    src, int((~finite).sum()), len(points))
        points = points[finite]
        normals = normals[finite] if normals is not None else None
    return points, normals, f"pcd {kind}"


# ---- meshes through trimesh: OBJ / OFF / STL / GLB -------------------------------------


@contextlib.contextmanager
def _quiet_logger(name: str, level: int = logging.CRITICAL) -> Iterator[None]:
    """Raise a third-party logger's level for a while (its warnings are ours to report)."""
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)


def _load_trimesh(
    p: Path, src: str, ext: str, sample_surface: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray | None, str]:
    import trimesh

    kind = ext.lstrip(".")
    try:
        with _quiet_logger("trimesh"):
            loaded = trimesh.load(os.fspath(p), file_type=kind, process=True)
    except Exception as exc:
        problem = f"cannot read the {kind.upper()} file, it may be garbled ({_first_line(exc)})"
        raise InputError(src, problem) from None

    parts = loaded.dump() if isinstance(loaded, trimesh.Scene) else [loaded]
    meshes = [g for g in parts if isinstance(g, trimesh.Trimesh) and len(g.faces)]
    clouds = [
        np.asarray(g.vertices, dtype=np.float64)
        for g in parts
        if not (isinstance(g, trimesh.Trimesh) and len(g.faces)) and hasattr(g, "vertices")
    ]
    if not meshes and not any(len(c) for c in clouds):
        why = f"the file is empty, garbled or not a valid {kind.upper()} file"
        raise InputError(src, f"contains no points ({why})")
    if sample_surface is not None and meshes:
        mesh = meshes[0] if len(meshes) == 1 else trimesh.util.concatenate(meshes)
        points, normals = _sample_mesh(mesh, sample_surface, seed, src)
        return points, normals, f"{kind} mesh, {sample_surface} surface samples"
    if sample_surface is not None:
        log.warning("%s: has no faces to sample; using its vertices as points", src)
    vertices = np.concatenate(
        [np.asarray(m.vertices, dtype=np.float64) for m in meshes] + clouds, axis=0
    )
    what = f"{kind} mesh vertices" if meshes else f"{kind} vertices"
    return vertices, None, what


def _sample_mesh(
    mesh: trimesh.Trimesh, count: int, seed: int, src: str
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``count`` points uniformly by area; returns points and face normals (count, 3)."""
    import trimesh

    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    n_bad = int((~np.isfinite(vertices).all(axis=1)).sum())
    if n_bad:
        raise InputError(src, f"{n_bad} of {len(vertices)} vertices have NaN/inf coordinates")
    if not mesh.area > 0:
        raise InputError(src, "the mesh has no surface area to sample")
    samples, face_index = trimesh.sample.sample_surface(mesh, count, seed=seed)
    normals = np.asarray(mesh.face_normals, dtype=np.float64)[face_index]
    return np.asarray(samples, dtype=np.float64), normals


# ---- PLY (plyfile) ---------------------------------------------------------------------

_PLY_MAGIC = re.compile(rb"ply[ \t]*\r?\n")
_END_HEADER = re.compile(rb"(?:^|\n)end_header[ \t]*(\r?\n|$)")
_PLY_HEADER_LIMIT = 1 << 20  # bytes searched for end_header before handing over to plyfile
#: faces are first read as fixed-length triangle lists: plyfile then memory-maps them
#: (measured: 0.01 s for 330k faces instead of 0.7 s with its per-row list parser); a file
#: with other polygons fails plyfile's list-length check and is read the general way
_TRIANGLE_LISTS = {"face": {"vertex_indices": 3, "vertex_index": 3}}
_PLY_BYTE_ORDER = {"<": "binary_little_endian", ">": "binary_big_endian", "=": "binary_little_endian"}


def _read_plydata(p: Path, src: str) -> Any:
    """The file parsed by plyfile; every failure is one InputError naming the file."""
    import plyfile

    try:
        with open(p, "rb") as f:
            head = f.read(_PLY_HEADER_LIMIT)
    except OSError as exc:
        raise InputError(src, f"cannot read the file ({exc.strerror or exc})") from None
    # checked here, not left to plyfile: random bytes after 'ply' give a UnicodeDecodeError
    if not head:
        raise InputError(src, "is empty (0 bytes)")
    if not _PLY_MAGIC.match(head):
        raise InputError(src, "not a PLY file (it does not start with 'ply')")
    if _END_HEADER.search(head) is None:
        raise InputError(src, "PLY header has no 'end_header' line (truncated or garbled)")
    try:
        try:
            return plyfile.PlyData.read(os.fspath(p), known_list_len=_TRIANGLE_LISTS)
        except plyfile.PlyElementParseError as exc:
            if exc.message != "unexpected list length":
                raise
            return plyfile.PlyData.read(os.fspath(p))  # polygons of mixed sizes
    except plyfile.PlyHeaderParseError as exc:
        raise InputError(src, f"bad PLY header ({_first_line(exc)})") from None
    except plyfile.PlyElementParseError as exc:
        el = exc.element
        if "end-of-file" in exc.message and el is not None:
            raise InputError(src, f"truncated: the header declares {el.count} '{el.name}' "
                                  f"elements but the data end at row {exc.row}") from None
        where = f"'{el.name}' row {(exc.row or 0) + 1}" if el is not None else "data"
        prop = f", property '{exc.prop.name}'" if exc.prop is not None else ""
        raise InputError(src, f"PLY {where}{prop}: {exc.message}") from None
    except Exception as exc:  # ValueError (duplicate names, bad counts), UnicodeDecodeError, ...
        raise InputError(src, f"cannot read the PLY file ({_first_line(exc)})") from None


def _ply_triangles(lists: np.ndarray, n_vertices: int, src: str) -> np.ndarray:
    """Triangles (M, 3) int64 from a PLY face list property (polygons are fan-triangulated)."""
    if lists.dtype != object:  # (F, k): all faces have k corners
        groups = [lists] if lists.ndim == 2 else []
    else:
        by_size: dict[int, list[np.ndarray]] = {}
        for poly in lists:
            by_size.setdefault(len(poly), []).append(poly)
        groups = [np.asarray(v) for _, v in sorted(by_size.items())]
    tris = [np.stack([g[:, 0], g[:, j], g[:, j + 1]], axis=1).astype(np.int64)
            for g in groups for j in range(1, g.shape[1] - 1)]  # fans; points/edges have no area
    if not tris:
        return np.zeros((0, 3), dtype=np.int64)
    triangles = np.concatenate(tris, axis=0)
    bad = (triangles < 0) | (triangles >= n_vertices)
    if bad.any():
        index = int(triangles[bad][0])
        raise InputError(src, f"a face refers to vertex {index} but there are {n_vertices} vertices")
    return triangles


def _load_ply(
    p: Path, src: str, sample_surface: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray | None, str]:
    ply = _read_plydata(p, src)
    names = [el.name for el in ply.elements]
    if "vertex" not in names:
        raise InputError(src, "PLY file has no 'vertex' element")
    vertex = ply["vertex"].data
    props = vertex.dtype.names or ()
    missing = [c for c in "xyz" if c not in props]
    if missing:
        raise InputError(src, f"PLY vertex element has no {'/'.join(missing)} property")
    for c in "xyz":
        if vertex.dtype[c].kind == "O" or vertex.dtype[c].shape:
            raise InputError(src, f"PLY vertex property '{c}' is a list, not a number")
    points = np.column_stack([np.asarray(vertex[c], dtype=np.float64) for c in "xyz"])
    normals = None
    for keys in (("nx", "ny", "nz"), ("normal_x", "normal_y", "normal_z")):
        if all(k in props for k in keys):
            normals = np.column_stack([np.asarray(vertex[k], dtype=np.float64) for k in keys])
            break
    n_faces = ply["face"].count if "face" in names else 0
    fmt = "ascii" if ply.text else _PLY_BYTE_ORDER[ply.byte_order]
    description = f"ply {fmt}" + (f", mesh with {n_faces} faces" if n_faces else "")
    if sample_surface is None:
        return points, normals, description
    if not n_faces:
        log.warning("%s: has no faces to sample; using its vertices as points", src)
        return points, normals, description

    import trimesh

    face = ply["face"].data
    key = next((k for k in ("vertex_indices", "vertex_index") if k in (face.dtype.names or ())), None)
    if key is None:
        raise InputError(src, "PLY 'face' element has no 'vertex_indices' list")
    triangles = _ply_triangles(face[key], len(points), src)
    if len(triangles) == 0:
        raise InputError(src, "the PLY faces have no triangles or polygons to sample")
    mesh = trimesh.Trimesh(vertices=points, faces=triangles, process=False)
    samples, sample_normals = _sample_mesh(mesh, sample_surface, seed, src)
    return samples, sample_normals, f"{description}, {sample_surface} surface samples"


# --------------------------------------------------------------------------------------
# writing


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Write a file all at once: yield a temporary path, rename it onto ``path`` on success.

    The temporary file is created (empty) in the destination folder, with the same suffix
    as ``path`` so that libraries choosing a format by extension work; it is deleted if the
    ``with`` body raises anything (including KeyboardInterrupt), and ``path`` is left as it
    was. On success it is flushed to disk and renamed onto ``path`` with ``os.replace``
    (atomic on POSIX and Windows within one file system). A new file gets the permissions
    of a normally created one (umask); an overwritten one keeps its mode.

    Parameters
    ----------
    path : str or os.PathLike
        Final destination.

    Yields
    ------
    pathlib.Path
        The temporary path to write to.

    Raises
    ------
    InputError
        ``path`` is a directory or its folder does not exist.

    Examples
    --------
    >>> with atomic_path("report.json") as tmp:          # doctest: +SKIP
    ...     tmp.write_text(json.dumps(report))
    """
    dest = Path(path)
    _check_writable(dest)
    folder = dest.parent
    while True:
        tmp = folder / f".{dest.name}.{uuid.uuid4().hex[:12]}.tmp{dest.suffix}"
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
        except OSError as exc:
            raise InputError(dest, f"cannot write to {folder} ({exc.strerror or exc})") from None
        os.close(fd)
        break
    try:
        yield tmp
        if dest.exists():
            shutil.copymode(dest, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _check_writable(dest: Path) -> None:
    if dest.is_dir():
        raise InputError(dest, "is a directory, not a file")
    folder = dest.parent
    if not folder.is_dir():
        raise InputError(dest, f"the folder {os.fspath(folder)!r} does not exist")


def _check_not_protected(dest: Path, protect: Iterable[PathLike]) -> None:
    """Raise InputError if ``dest`` is (or would replace) one of the ``protect`` files."""
    for other in protect:
        q = Path(other)
        same = False
        if dest.exists() and q.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(dest, q)
        if not same:
            same = dest.resolve() == q.resolve()
        if same:
            raise InputError(dest, f"refusing to overwrite the input file {os.fspath(q)}")


def check_output(path: PathLike, *, suffixes: Iterable[str] | None = None, protect: Iterable[PathLike] = ()) -> Path:
    """Check an output path before any work: its extension (one of ``suffixes``), not one
    of the ``protect`` inputs, not a folder, in an existing folder that can be written.

    Raises
    ------
    InputError
        One line naming the path and the problem.
    """
    dest = Path(path)
    if suffixes is not None:
        allowed = tuple(suffixes)
        if dest.suffix.lower() not in allowed:
            raise InputError(dest, f"unsupported output extension {dest.suffix or '(none)'!r}; "
                                   f"use one of {', '.join(sorted(allowed))}")
    for inp in protect:
        with contextlib.suppress(OSError):
            if Path(inp).exists() and dest.exists() and dest.resolve() == Path(inp).resolve():
                raise InputError(dest, "output would overwrite the input file")
    folder = dest.parent
    if not folder.exists():
        raise InputError(dest, f"output folder {folder} does not exist")
    if dest.is_dir():
        raise InputError(dest, "output path is a directory")
    if not os.access(folder, os.W_OK):
        raise InputError(dest, f"output folder {folder} is not writable")
    return dest


def save_mesh(
    mesh: trimesh.Trimesh, path: PathLike, *, protect: Iterable[PathLike] = ()
) -> Path:
    """Write a triangle mesh, choosing the format by extension, atomically.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Vertices (V, 3) and faces (F, 3).
    path : str or os.PathLike
        Destination with one of :data:`SUPPORTED_MESH_EXTENSIONS`: ``.ply`` (binary little
        endian, float64 vertices so that large input coordinates keep their precision,
        plus every numeric per-vertex array of ``mesh.vertex_attributes`` as a vertex
        property of its own dtype, e.g. ``quality``, which MeshLab shows as vertex
        quality; (V, k) arrays become ``name_0 .. name_{k-1}``), ``.obj``, ``.stl``
        (binary), ``.off``, ``.glb`` (the last four through trimesh).
    protect : iterable of paths
        Files that must not be overwritten (typically the input scan).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        Unsupported extension, ``path`` is one of ``protect`` or a directory, its folder
        does not exist, or the file cannot be written. Checked before any work is done.
    """
    dest = Path(path)
    ext = dest.suffix.lower()
    if ext not in SUPPORTED_MESH_EXTENSIONS:
        what = f"unsupported mesh format '{dest.suffix}'" if ext else "no file extension"
        raise InputError(dest, f"{what}; supported: {' '.join(SUPPORTED_MESH_EXTENSIONS)}")
    _check_not_protected(dest, protect)
    _check_writable(dest)
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    attributes = _vertex_attributes(mesh, len(vertices)) if ext == ".ply" else None
    try:
        with atomic_path(dest) as tmp:
            if ext == ".ply":
                _write_ply_binary(tmp, vertices, faces=faces, attributes=attributes)
            else:
                with _quiet_logger("trimesh"):
                    mesh.export(os.fspath(tmp), file_type=ext.lstrip("."))
    except OSError as exc:
        raise InputError(dest, f"cannot write the file ({exc.strerror or exc})") from None
    log.debug("%s: wrote mesh with %d vertices, %d faces", dest, len(vertices), len(faces))
    return dest


def save_points(
    path: PathLike,
    points: Any,
    normals: Any = None,
    *,
    precision: int = 17,
) -> Path:
    """Write a point cloud, choosing the format by extension, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination with one of :data:`SAVE_POINT_EXTENSIONS`: ``.xyz``/``.txt``
        (space-separated), ``.csv`` (comma-separated), ``.pts`` (a point-count line, then
        space-separated), ``.ply`` (binary little endian, float64), ``.npy`` ((N, 3) or
        (N, 6) array), ``.npz`` (arrays ``points`` and, if given, ``normals``).
    points : (N, 3) array_like of float
    normals : (N, 3) array_like of float, optional
        Written as columns 4-6 (text, NPY), ``nx ny nz`` (PLY) or ``normals`` (NPZ).
    precision : int
        Significant digits of text formats; the default 17 is lossless for float64.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        Unsupported extension, arrays of the wrong shape, or the file cannot be written.
    """
    dest = Path(path)
    ext = dest.suffix.lower()
    if ext not in SAVE_POINT_EXTENSIONS:
        what = f"unsupported point format '{dest.suffix}'" if ext else "no file extension"
        raise InputError(dest, f"{what}; supported: {' '.join(SAVE_POINT_EXTENSIONS)}")
    pts = _as_float_array(points, "<array>", "points")
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise InputError(None, f"points must be an (N, 3) array, got shape {pts.shape}")
    nrm = None
    if normals is not None:
        nrm = _as_float_array(normals, "<array>", "normals")
        if nrm.shape != pts.shape:
            raise InputError(None, f"normals have shape {nrm.shape}, expected {pts.shape}")
    table = pts if nrm is None else np.hstack([pts, nrm])
    _check_writable(dest)
    try:
        with atomic_path(dest) as tmp:
            if ext in (".xyz", ".txt", ".pts", ".csv"):
                header = f"{len(table)}" if ext == ".pts" else ""
                np.savetxt(
                    tmp,
                    table,
                    fmt=f"%.{int(precision)}g",
                    delimiter="," if ext == ".csv" else " ",
                    header=header,
                    comments="",
                )
            elif ext == ".ply":
                _write_ply_binary(tmp, pts, normals=nrm)
            elif ext == ".npy":
                np.save(tmp, table)
            else:  # .npz
                arrays = {"points": pts} if nrm is None else {"points": pts, "normals": nrm}
                np.savez(tmp, **arrays)
    except OSError as exc:
        raise InputError(dest, f"cannot write the file ({exc.strerror or exc})") from None
    log.debug("%s: wrote %d points%s", dest, len(pts), "" if nrm is None else " with normals")
    return dest


def _vertex_attributes(mesh: Any, n: int) -> dict[str, np.ndarray]:
    """Numeric per-vertex arrays of ``mesh.vertex_attributes`` as PLY columns (name -> (n,))."""
    out: dict[str, np.ndarray] = {}
    for name, value in dict(getattr(mesh, "vertex_attributes", None) or {}).items():
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf" or arr.ndim not in (1, 2) or len(arr) != n:
            log.warning("vertex attribute %r (dtype %s, shape %s) is not a numeric per-vertex "
                        "array of length %d: not written", name, arr.dtype, arr.shape, n)
            continue
        arr = arr.astype(np.uint8) if arr.dtype.kind == "b" else arr
        columns = {name: arr} if arr.ndim == 1 else {f"{name}_{j}": arr[:, j] for j in range(arr.shape[1])}
        for key, col in columns.items():
            if key in ("x", "y", "z", "nx", "ny", "nz") or not re.fullmatch(r"[A-Za-z_]\w*", key):
                log.warning("vertex attribute %r: name not usable as a PLY property; not written", key)
                continue
            out[key] = col
    return out


def _write_ply_binary(
    path: Path,
    vertices: np.ndarray,
    *,
    normals: np.ndarray | None = None,
    faces: np.ndarray | None = None,
    attributes: dict[str, np.ndarray] | None = None,
) -> None:
    """Binary little-endian PLY: float64 ``x y z [nx ny nz]``, extra vertex properties
    (``attributes``, their own dtype), triangles as ``uchar int`` lists.

    plyfile writes the header; the data are written with ``tobytes`` because plyfile's
    list writer goes row by row (measured: 0.45 s instead of 0.01 s for 330k faces).
    """
    import plyfile

    columns = {"x": vertices[:, 0], "y": vertices[:, 1], "z": vertices[:, 2]}
    if normals is not None:
        columns.update(nx=normals[:, 0], ny=normals[:, 1], nz=normals[:, 2])
    columns.update(attributes or {})
    vert = np.empty(len(vertices), dtype=[(k, np.dtype(v.dtype).newbyteorder("<")) for k, v in columns.items()])
    for k, v in columns.items():
        vert[k] = v
    elements = [plyfile.PlyElement.describe(vert, "vertex")]
    face_block = b""
    if faces is not None:
        face = np.empty(len(faces), dtype=[("n", "u1"), ("vertex_indices", "<i4", (3,))])
        face["n"], face["vertex_indices"] = 3, faces
        layout = np.empty(len(faces), dtype=[("vertex_indices", "<i4", (3,))])  # header only
        elements.append(plyfile.PlyElement.describe(layout, "face", len_types={"vertex_indices": "u1"}))
        face_block = face.tobytes()
    header = plyfile.PlyData(elements, byte_order="<", comments=["written by surfrec"]).header
    with open(path, "wb") as f:
        f.write((header + "\n").encode("ascii"))
        f.write(vert.tobytes())
        f.write(face_block)
