"""Interruption and resume: a resumed fit equals the uninterrupted one (same seed)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from surfrec.errors import FitInterrupted, InputError
from surfrec.run import fit

SMALL = dict(preset="fast", iterations=30, time_budget=None, n_samples=512, batch_points=512, device="cpu",
             threads=1, seed=7)


@pytest.fixture(scope="module")
def cloud() -> np.ndarray:
    rng = np.random.default_rng(0)
    p = rng.normal(size=(2000, 3))
    return p / np.linalg.norm(p, axis=1, keepdims=True) * np.array([1.0, 0.6, 0.4]) + 3.0


@pytest.mark.parametrize("keep_far", [0.0, 0.2])
def test_resume_reproduces_the_uninterrupted_fit(cloud, tmp_path, keep_far):
    """Also with ``keep_far_fraction`` (the samples' last distances travel in the checkpoint)."""
    full = fit(cloud, keep_far_fraction=keep_far, **SMALL)
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 12  # interrupt before step 12

    ckpt = tmp_path / "fit.ckpt.pt"
    with pytest.raises(FitInterrupted) as info:
        fit(cloud, stop=stop, checkpoint=ckpt, keep_far_fraction=keep_far, **SMALL)
    assert info.value.step == 12 and ckpt.is_file()
    resumed = fit(cloud, resume=ckpt, preset="default")  # the checkpoint's settings win
    assert resumed.steps == full.steps == 30
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert resumed.history["loss"] == full.history["loss"]


def test_resume_refuses_another_scan_and_bad_files(cloud, tmp_path):
    ckpt = tmp_path / "c.pt"
    with pytest.raises(FitInterrupted):
        fit(cloud, stop=lambda: True, checkpoint=ckpt, **SMALL)
    with pytest.raises(InputError, match="another scan"):
        fit(cloud * 2, resume=ckpt)
    payload = torch.load(ckpt, weights_only=True)
    payload["surfrec_version"] = "0.0.1"
    torch.save(payload, tmp_path / "old.pt")
    with pytest.raises(InputError, match="cannot be resumed"):
        fit(cloud, resume=tmp_path / "old.pt")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_signal_saves_checkpoint_and_resumes(tmp_path, sig):
    scan = Path(__file__).resolve().parents[1] / "data" / "example.xyz"
    out = tmp_path / "m.ply"
    cmd = [sys.executable, "-m", "surfrec", "fit", str(scan), "-o", str(out), "--iters", "100000",
           "--resolution", "32", "--threads", "1", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ckpt = Path(str(out) + ".ckpt.pt")
    time.sleep(8)  # imports, loading, a few steps
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err and ckpt.is_file() and not out.exists()
    # resume with fewer total steps than already done: finishes at once and writes the mesh
    payload = torch.load(ckpt, weights_only=True)
    payload["config"]["fit"]["iterations"] = payload["step"]
    torch.save(payload, ckpt)
    r = subprocess.run(cmd[:-7] + ["--resume", str(ckpt), "--resolution", "32", "-q"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.is_file()
