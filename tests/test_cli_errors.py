"""Bad input files on the command line: exit code 2, one line on stderr, no traceback.

The commands run in subprocesses (``python -m surfrec ...``), all started at once by a
module fixture so that the interpreter start-ups (torch for ``fit``) overlap.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import surfrec.cli
from surfrec.errors import InputError

CLI_DIR = Path(surfrec.cli.__file__).resolve().parent
REPO = CLI_DIR.parents[1]
EXAMPLE = REPO / "data" / "example.xyz"

_GOOD_PLY_HEADER = (
    b"ply\nformat binary_little_endian 1.0\nelement vertex 1000\n"
    b"property float x\nproperty float y\nproperty float z\nend_header\n"
)
_GARBAGE = np.random.default_rng(3).bytes(2000)


def _text(content: str) -> Callable[[Path], None]:
    return lambda p: p.write_text(content)


def _bytes(content: bytes) -> Callable[[Path], None]:
    return lambda p: p.write_bytes(content)


# (case id, file name, how to make it (None: do not create), expected part of the message)
CASES: list[tuple[str, str, Callable[[Path], None] | None, str]] = [
    ("missing", "missing_scan.xyz", None, "file not found"),
    ("unknown-extension", "scan_file.vtk", _text("1 2 3\n" * 20), "unsupported file type"),
    ("empty", "empty_scan.xyz", _text(""), "contains no points"),
    ("three-points", "three_points.xyz", _text("1 2 3\n4 5 6\n7 8 9\n"), "only 3 points"),
    (
        "nan",
        "nan_scan.xyz",
        _text("".join(f"{i} {i} {i}\n" for i in range(20)) + "nan 1 2\n"),
        "1 of 21 points have NaN/inf",
    ),
    ("directory", "scan_folder", lambda p: p.mkdir(), "is a directory"),
    ("garbled-ply", "garbled_data.ply", _bytes(_GOOD_PLY_HEADER + _GARBAGE[:500]), "truncated"),
]
CASE_IDS = [c[0] for c in CASES]
# more cases for the in-process tests only (each CLI start-up costs seconds: torch)
MODULE_CASES = CASES + [
    ("garbled-ply-header", "garbled_header.ply", _bytes(b"ply\n" + _GARBAGE), "end_header"),
    ("garbled-xyz", "garbled.xyz", _bytes(_GARBAGE), "binary file"),
]


def _argv(command: str, scan: Path, out: Path) -> list[str]:
    if command == "fit":
        return ["fit", os.fspath(scan), "-o", os.fspath(out)]
    name, *options = command.split()
    return [name, os.fspath(scan), *options]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[tuple[str, str], tuple[subprocess.CompletedProcess, Path]]:
    """Run every (command, case) in parallel; returns the finished processes and out paths."""
    folder = tmp_path_factory.mktemp("cli_errors")
    commands = ["info"] + (["fit"] if (CLI_DIR / "fit_cmd.py").exists() else [])
    for _, name, make, _ in CASES:
        if make is not None:
            make(folder / name)
    jobs = [
        (command, case, folder / name, folder / f"out_{command}_{case}.ply")
        for command in commands
        for case, name, _, _ in CASES
    ]
    jobs += [(cmd, "example", EXAMPLE, folder / "unused") for cmd in ("info", "info --json")]
    running: dict[tuple[str, str], tuple[subprocess.Popen, Path]] = {}
    results = {}

    def finish(key: tuple[str, str]) -> None:
        proc, out = running.pop(key)
        stdout, stderr = proc.communicate(timeout=300)
        done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        results[key] = (done, out)

    width = max(2, os.cpu_count() or 2)  # each start-up imports torch: do not oversubscribe
    for command, case, scan, out in jobs:
        if len(running) >= width:
            finish(next(iter(running)))
        proc = subprocess.Popen(
            [sys.executable, "-m", "surfrec", *_argv(command, scan, out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=folder,
        )
        running[command, case] = (proc, out)
    while running:
        finish(next(iter(running)))
    return results


def _check(result: subprocess.CompletedProcess, name: str, expected: str, command: str) -> None:
    err = result.stderr.strip()
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert len(err.splitlines()) == 1, result.stderr
    assert err.startswith(f"surfrec {command}: error: "), err
    assert name in err and expected in err, err


@pytest.mark.parametrize(("case", "name", "make", "expected"), CASES, ids=CASE_IDS)
def test_info_bad_input(runs, case, name, make, expected):
    result, _ = runs["info", case]
    _check(result, name, expected, "info")
    assert result.stdout == ""


@pytest.mark.parametrize(("case", "name", "make", "expected"), CASES, ids=CASE_IDS)
def test_fit_bad_input(runs, case, name, make, expected):
    result, out = runs["fit", case]
    _check(result, name, expected, "fit")
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]


def test_info_on_the_example(runs):
    text, _ = runs["info", "example"]
    assert text.returncode == 0 and text.stderr == "", text.stderr
    assert "points:" in text.stdout and "20,000" in text.stdout
    assert "normals:      no" in text.stdout
    js, _ = runs["info --json", "example"]
    assert js.returncode == 0 and js.stderr == "", js.stderr
    report = json.loads(js.stdout)
    assert report["points"] == 20000 and report["normals"] is False
    np.testing.assert_allclose(
        (np.array(report["bbox_min"]) + report["bbox_max"]) / 2, [12, -3, 40], atol=0.1
    )


# ---- the same cases through the command module directly (no dispatcher needed) -------


def _info_args(*argv: str) -> argparse.Namespace:
    from surfrec.cli import info_cmd

    parser = argparse.ArgumentParser()
    info_cmd.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(
    ("case", "name", "make", "expected"), MODULE_CASES, ids=[c[0] for c in MODULE_CASES]
)
def test_info_module_raises_input_error(tmp_path, capsys, case, name, make, expected):
    from surfrec.cli import info_cmd

    if make is not None:
        make(tmp_path / name)
    with pytest.raises(InputError) as info:
        info_cmd.run(_info_args(os.fspath(tmp_path / name)))
    message = str(info.value)
    assert name in message and expected in message and "\n" not in message
    assert capsys.readouterr().out == ""


def test_info_module_report(capsys, tmp_path):
    from surfrec.cli import info_cmd
    from surfrec.io import save_points

    rng = np.random.default_rng(0)
    points = rng.normal(size=(500, 3)) + [12.0, -3.0, 40.0]
    points[-5:] = points[:5]  # five exact duplicates
    normals = np.tile([0.0, 0.0, 1.0], (500, 1))
    save_points(tmp_path / "dup.ply", points, normals)
    assert info_cmd.run(_info_args(os.fspath(tmp_path / "dup.ply"), "--json")) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["points"] == 500 and report["duplicates"] == 5 and report["normals"] is True
    assert report["format"] == "ply binary_little_endian"
    np.testing.assert_allclose(report["bbox_min"], points.min(axis=0))
    np.testing.assert_allclose(report["bbox_size"], np.ptp(points, axis=0))
    # spacing against a brute-force nearest-neighbour distance over the distinct points
    distinct = np.unique(points, axis=0)
    d = np.linalg.norm(distinct[:, None] - distinct[None], axis=2)
    np.fill_diagonal(d, np.inf)
    assert report["mean_spacing"] == pytest.approx(d.min(axis=1).mean(), rel=1e-12)

    assert info_cmd.run(_info_args(os.fspath(tmp_path / "dup.ply"))) == 0
    text = capsys.readouterr().out
    assert "duplicates:   5" in text and "normals:      yes" in text


def test_info_summary_subsamples_large_clouds():
    from surfrec.input.inspect import summarize

    grid = np.stack(np.meshgrid(*[np.arange(40.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    stats = summarize(0.5 * grid, max_samples=1000)
    assert stats["spacing_samples"] == 1000 and stats["points"] == 64000
    assert stats["mean_spacing"] == pytest.approx(0.5)


def test_every_malformed_file_of_the_io_corpus_on_the_command_line(tmp_path):
    """The whole hostile-input corpus of tests/test_io.py (more than 30 files) through the CLI."""
    from test_io import BAD_INPUTS

    assert len(BAD_INPUTS) >= 30
    procs = []
    for case_id, name, make, expected in BAD_INPUTS:
        folder = tmp_path / case_id
        folder.mkdir()
        path = folder / name
        if make is not None:
            make(path)
        cmd = [sys.executable, "-m", "surfrec", "info", str(path)]
        procs.append((case_id, name, expected, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                                text=True)))
    for case_id, name, expected, proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, (case_id, err)
        assert "Traceback" not in err and out == "", (case_id, err)
        line = err.strip()
        assert len(line.splitlines()) == 1 and name in line and expected in line, (case_id, line)
