"""The runner: a failure after the fit never loses the fit."""

from __future__ import annotations

from pathlib import Path

import pytest

from surfrec.cli.main import main
from surfrec.result import load_model

EXAMPLE = str(Path(__file__).resolve().parents[1] / "data" / "example.xyz")

#: stage -> (module, function) the test makes fail
STAGES = {
    "meshing": ("surfrec.surface.extract", "extract_level_set"),
    "refinement": ("surfrec.surface.refine", "refine_mesh"),
    "surface step": ("surfrec.surface.decide", "surface_step"),
    "support map": ("surfrec.surface.support", "measure_support"),
    "writing": ("surfrec.io", "save_mesh"),
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_failure_after_the_fit_saves_the_model_and_says_how_to_mesh_it(stage, tmp_path, monkeypatch, capsys):
    import importlib

    module, name = STAGES[stage]

    def broken(*args, **kwargs):
        raise RuntimeError("injected\nfailure")

    out = tmp_path / "m.ply"
    with monkeypatch.context() as m:
        m.setattr(importlib.import_module(module), name, broken)
        code = main(["fit", EXAMPLE, "-o", str(out), "--iters", "20", "--resolution", "32", "--threads", "1", "-q"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err  # one line, not an input error
    assert f"{stage} failed (RuntimeError: injected failure)" in err
    model = Path(str(out) + ".model.pt")
    assert model.is_file() and f"surfrec mesh {model} -o {out}" in err
    result = load_model(model)
    assert result.steps == 20 and result.input is not None
    if stage != "writing":
        assert not out.exists()
    # the command the line gives works
    assert main(["mesh", str(model), "-o", str(out), "-q"]) == 0 and out.is_file()


def test_the_model_goes_where_the_user_asked(tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr("surfrec.surface.refine.refine_mesh", broken)
    model = tmp_path / "mine.pt"
    code = main(["fit", EXAMPLE, "-o", str(tmp_path / "m.ply"), "--save-model", str(model), "--iters", "5",
                 "--resolution", "24", "-q"])
    assert code == 1 and model.is_file() and "mine.pt" in capsys.readouterr().err
    assert not (tmp_path / "m.ply.model.pt").exists()


def test_the_same_mesh_bytes_with_one_thread_or_two(tmp_path):
    """The fused engine and the stages after it give the same bits whatever the thread count."""
    out = {}
    for threads in ("1", "2"):
        path = tmp_path / f"m{threads}.ply"
        assert main(["fit", EXAMPLE, "-o", str(path), "--iters", "60", "--resolution", "48", "--threads", threads,
                     "-q"]) == 0
        out[threads] = path.read_bytes()
    assert out["1"] == out["2"]
