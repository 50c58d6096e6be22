"""A demo fit report and a demo bench page from synthetic data, and screenshots of both.

The shape is a bumpy sphere (marching cubes of an analytic field); the "scan" samples it
everywhere but a cap, so the support map (distance to the scan in point spacings) is green
on the data and red on the cap the scan never saw. The bench page has two cases and three
"methods" (the shape, noisier copies of it). Both pages are written beside the PNGs and
photographed in headless Chromium (the system package, driven by the pip package
``playwright``; no network, swiftshader WebGL).

Usage::

    python benchmarks/report_screenshots.py OUT_DIR [--chromium /usr/bin/chromium]

writes ``OUT_DIR/report_fit.html``, ``report_fit.png`` (the whole page),
``report_bench.html`` and ``report_bench.png`` (after opening the first case's viewer).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from surfrec import __version__
from surfrec.report import BenchMesh, FitReportData, write_bench_report, write_fit_report

log = logging.getLogger("report_screenshots")

CHROMIUM_ARGS = ["--use-gl=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox", "--disable-gpu",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--proxy-server=http://127.0.0.1:9"]


def bumpy_sphere(n: int, bumps: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes of a bumpy sphere on an n^3 grid: vertices, faces."""
    from skimage.measure import marching_cubes

    g = np.linspace(-1.3, 1.3, n)
    x, y, z = np.meshgrid(g, g, g, indexing="ij")
    field = np.sqrt(x**2 + (y / 1.2) ** 2 + z**2) - 1 + bumps * np.sin(5 * x) * np.cos(4 * y) * np.sin(3 * z)
    v, f, _, _ = marching_cubes(field, 0.0, spacing=(g[1] - g[0],) * 3)
    return v + g[0], f.astype(np.int64)


def partial_scan(v: np.ndarray, f: np.ndarray, n: int, rng) -> np.ndarray:
    """Noisy surface samples everywhere but the cap x > 0.55 (the part the scanner missed)."""
    import trimesh

    pts = trimesh.Trimesh(v, f, process=False).sample(2 * n, seed=0)
    pts = pts[pts[:, 0] < 0.55][:n]
    return pts + rng.normal(0, 0.004, pts.shape)


def support_map(v: np.ndarray, scan: np.ndarray) -> tuple[np.ndarray, float]:
    """Each vertex's distance to the scan in point spacings s, and s."""
    from scipy.spatial import cKDTree

    tree = cKDTree(scan)
    s = float(np.median(tree.query(scan, k=2)[0][:, 1]))
    return tree.query(v)[0] / s, s


def demo_fit_data(rng) -> FitReportData:
    """A complete FitReportData of the bumpy sphere (made-up history and timings)."""
    v, f = bumpy_sphere(96)
    rv, rf = bumpy_sphere(48)
    scan = partial_scan(v, f, 30_000, rng)
    support, s = support_map(v, scan)
    samples = v[rng.choice(len(v), 4000)]
    i = np.arange(60)
    history = {"step": (100 * i).tolist(), "loss": (np.exp(-i / 12) + 0.02).tolist(),
               "surface": (0.3 * np.exp(-i / 9) + 2e-3).tolist(), "data": (0.1 * np.exp(-i / 15) + 1e-3).tolist(),
               "slope": [float("nan")] * 20 + (0.05 * np.exp(-i[20:] / 10) + 5e-4).tolist(),
               "residual_median": (10.0 ** -(2 + i / 25)).tolist(), "residual_p90": (10.0 ** -(1.4 + i / 25)).tolist(),
               "converged": (1 - 0.7 * np.exp(-i / 12)).tolist()}
    curve = [{"k": k, "median": 10.0 ** -(1 + k / 3.5), "p90": 10.0 ** -(0.6 + k / 4.5),
              "converged": float(1 - np.exp(-k / 3))} for k in range(1, 21)]
    far = support > 4
    return FitReportData(
        title="bumpy_sphere.ply", mesh_vertices=v, mesh_faces=f, support=support, scan_points=scan,
        samples=samples, sample_residuals=10.0 ** rng.uniform(-7, -3, len(samples)), raw_vertices=rv, raw_faces=rf,
        history=history, residual_curve=curve,
        timings={"read": 0.21, "inspect": 0.84, "fit": 61.3, "extract": 4.1, "refine": 2.6, "surface": 0.9,
                 "support": 1.7, "write": 0.3},
        decision=[("surface", "closed (kept)"), ("closure", "0.97"), ("phantom share", f"{far.mean():.1%}"),
                  ("trimmed share", "0 %"), ("rule", "open when phantom > 25 %")],
        support_metrics={"cover": 0.994, "phantom": float(far.mean()), "missed": 0.0, "scan_to_mesh_mean_s": 0.31,
                         "mesh_to_scan_mean_s": float(support.mean()), "scan_to_mesh_mean": 0.31 * s,
                         "mesh_to_scan_mean": float(support.mean()) * s, "spacing": s},
        gt_metrics={"chamfer_l1": 0.00412, "normal_consistency": 0.981, "fscore@0.01": 0.962},
        command="surfrec fit bumpy_sphere.ply -o bumpy_sphere.out.ply --report bumpy_sphere.html",
        version=__version__, notes=["demo data: a synthetic shape, made-up history and timings"])


def demo_bench(rng) -> tuple[list[dict], dict[str, dict[str, BenchMesh]]]:
    """Two cases x three methods (noisier copies of the shape stand in for the methods)."""
    rows, cases = [], {}
    for case, bumps in (("bumpy", 0.08), ("smooth", 0.0)):
        v, f = bumpy_sphere(64, bumps)
        scan = partial_scan(v, f, 15_000, rng)
        cases[case] = {}
        for j, method in enumerate(("surfrec", "poisson", "ball pivoting")):
            vj = v + rng.normal(0, 0.003 * j, v.shape)
            cases[case][method] = BenchMesh(vj, f, support_map(vj, scan)[0])
            rows.append({"case": case, "method": method, "chamfer_l1": 0.004 * (1 + j) * (1 + bumps),
                         "normal_consistency": 0.98 - 0.03 * j, "seconds": [60.0, 4.0, 9.0][j],
                         "peak_mem_mb": [900, 400, 350][j], "status": "ok"})
    return rows, cases


def screenshot(pages: list[tuple[Path, Path, str | None]], chromium: str) -> None:
    """Open each page from disk and write a full-page PNG (after clicking ``click`` if given)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        for html, png, click in pages:
            context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.goto(html.resolve().as_uri())
            page.wait_for_selector("body[data-ready='1']", state="attached", timeout=60_000)
            if click:
                page.click(click)
                page.wait_for_selector("body[data-viewer]:not([data-viewer=''])", state="attached", timeout=60_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(png), full_page=True)
            log.info("wrote %s", png)
            context.close()
        browser.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="folder for the pages and their PNGs")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium",
                        help="Chromium binary (default: the system one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    fit_html = write_fit_report(demo_fit_data(rng), args.out / "report_fit.html")
    bench_html = write_bench_report(*demo_bench(rng), args.out / "report_bench.html")
    log.info("pages written in %.1f s", time.perf_counter() - t0)
    screenshot([(fit_html, args.out / "report_fit.png", None),
                (bench_html, args.out / "report_bench.png", "#bench-table td.cell")], args.chromium)


if __name__ == "__main__":
    main()
