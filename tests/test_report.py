"""The HTML reports (surfrec.evaluation.report): one offline file, checked in a real browser.

The browser tests drive the *system* Chromium (Debian: ``apt-get install -y chromium``)
with the pip package ``playwright`` (``executable_path``; playwright's own browser download
is never used). One browser per module; each page is opened from a ``file://`` path in a
context that is offline, behind a dead proxy and with every non-file request aborted, and
every request the page makes is recorded.

Without Chromium or playwright these tests fail when ``$CI`` is set and skip otherwise.
Set ``$SURFREC_CHROMIUM`` to use another Chromium binary.
"""

from __future__ import annotations

import html
import io
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import trimesh

from surfrec.errors import InputError
from surfrec.evaluation.report import (
    BenchMesh,
    FitReportData,
    HtmlReport,
    bench_report,
    decimate_mesh,
    fit_report,
    support_colorscale,
    write_bench_report,
    write_fit_report,
)
from surfrec.surface.support import support_colors

CHROMIUM_ENV = "SURFREC_CHROMIUM"
CHROMIUM_ARGS = [
    "--use-gl=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox", "--disable-gpu",
    "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
]
MB = 1_000_000


# --------------------------------------------------------------------------------------
# synthetic inputs


def _history(n: int = 40) -> dict[str, list[float]]:
    i = np.arange(n)
    return {
        "step": (100 * i).tolist(), "loss": (np.exp(-i / 10) + 0.01).tolist(),
        "surface": (0.5 * np.exp(-i / 8) + 1e-3).tolist(),
        "data": [float("nan")] * 5 + (0.1 * np.exp(-i[5:] / 9) + 1e-3).tolist(),
        "residual_median": (10.0 ** -(2 + i / 20)).tolist(), "residual_p90": (10.0 ** -(1.5 + i / 20)).tolist(),
        "converged": np.linspace(0.3, 0.99, n).tolist(),
    }


def fit_data(*, gt: bool = True, subdivisions: int = 3) -> FitReportData:
    """An icosphere supported on x < 0 and phantom on x > 0, a noisy scan, samples and a history."""
    rng = np.random.default_rng(0)
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions)
    raw = trimesh.creation.icosphere(subdivisions=2)
    scan = mesh.sample(3000, seed=0) + rng.normal(0, 0.01, (3000, 3))
    curve = [{"k": k, "median": 10.0 ** -(1 + k / 4), "p90": 10.0 ** -(0.5 + k / 5), "converged": min(1.0, k / 10)}
             for k in range(1, 21)]
    return FitReportData(
        title="sphere.ply", mesh_vertices=mesh.vertices, mesh_faces=mesh.faces,
        support=np.where(mesh.vertices[:, 0] < 0, 0.3, 5.0), scan_points=scan,
        samples=mesh.sample(800, seed=1), sample_residuals=10.0 ** rng.uniform(-6, -2, 800),
        raw_vertices=raw.vertices * 1.02, raw_faces=raw.faces, history=_history(), residual_curve=curve,
        timings={"read": 0.1, "inspect": 0.3, "fit": 42.0, "extract": 3.2, "refine": 1.1, "write": 0.05},
        decision=[("surface", "closed"), ("closure", "0.98"), ("trimmed share", "0 %")],
        support_metrics={"cover": 0.991, "phantom": 0.012, "scan_to_mesh_mean_s": 0.3, "mesh_to_scan_mean_s": 0.5,
                         "scan_to_mesh_mean": 0.003, "mesh_to_scan_mean": 0.005, "spacing": 0.01},
        gt_metrics={"chamfer_l1": 0.0031, "normal_consistency": 0.97, "fscore@0.01": 0.95} if gt else None,
        command="surfrec fit sphere.ply -o sphere.out.ply --report sphere.html", version="0.1.0",
        notes=["a note for the reader"],
    )


def bench_inputs() -> tuple[list[dict], dict[str, dict[str, BenchMesh]]]:
    """Two cases x three methods (one without a support map, one failed run)."""
    rng = np.random.default_rng(1)
    shapes = {"sphere": trimesh.creation.icosphere(subdivisions=3), "torus": trimesh.creation.torus(1.0, 0.3)}
    rows, cases = [], {}
    for case, m in shapes.items():
        cases[case] = {}
        for j, method in enumerate(["surfrec", "poisson", "igr"]):
            v = m.vertices + rng.normal(0, 0.004 * (j + 1), m.vertices.shape)
            support = None if method == "igr" else np.abs(rng.normal(0, 1 + j, len(v)))
            cases[case][method] = BenchMesh(v, m.faces, support)
            rows.append({"case": case, "method": method, "chamfer_l1": 1e-3 * (j + 1),
                         "normal_consistency": 0.97 - 0.02 * j, "seconds": 10.0 * (j + 1),
                         "peak_mem_mb": 500 + 100 * j,
                         "status": "timeout" if (case, method) == ("torus", "igr") else "ok"})
    return rows, cases


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    """The pages the browser tests open: fit (with / without ground truth) and bench."""
    out = tmp_path_factory.mktemp("report")
    rows, cases = bench_inputs()
    return {
        "fit": write_fit_report(fit_data(gt=True), out / "fit.html"),
        "fit_no_gt": write_fit_report(fit_data(gt=False), out / "fit_no_gt.html"),
        "bench": write_bench_report(rows, cases, out / "bench.html"),
    }


# --------------------------------------------------------------------------------------
# the file itself (no browser)


def _markup(page: str) -> str:
    """The page without the contents of its <script> elements (plotly's code names URLs)."""
    return re.sub(r"(<script[^>]*>).*?(</script>)", r"\1\2", page, flags=re.S | re.I)


def test_page_is_one_file_with_nothing_to_fetch(pages):
    for path in pages.values():
        page = path.read_text(encoding="utf-8")
        markup = _markup(page)
        refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)|url\(\s*["']?([^"')]+)""", markup, flags=re.I)
        external = [a or b for a, b in refs if not (a or b).startswith(("data:", "#"))]
        assert external == [], f"{path.name} references {external}"
        assert not re.search(r"<(link|iframe|object|embed|base)\b", markup, flags=re.I)
        assert page.count("* plotly.js v") == 1  # plotly inlined exactly once
        assert "Content-Security-Policy" in page and "default-src 'none'" in page
        assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temp files


def test_fit_page_without_ground_truth_has_no_gt_rows(pages):
    with_gt = pages["fit"].read_text(encoding="utf-8")
    without = pages["fit_no_gt"].read_text(encoding="utf-8")
    assert 'id="ground-truth"' in with_gt and "Chamfer L1" in with_gt and "F-score @ 0.01" in with_gt
    assert 'id="ground-truth"' not in without and "gt-row" not in _markup(without)
    assert "Chamfer" not in _markup(without)


def test_size_of_a_250k_face_mesh_and_a_50k_point_scan(tmp_path):
    rng = np.random.default_rng(0)
    sphere = trimesh.creation.uv_sphere(count=[177, 354])  # 249,216 faces
    assert len(sphere.faces) >= 249_000
    v = sphere.vertices * (1 + 0.02 * rng.standard_normal((len(sphere.vertices), 1)))  # incompressible floats
    scan = rng.standard_normal((50_000, 3))
    data = FitReportData("big", v, sphere.faces, support=rng.gamma(1.0, 1.0, len(v)),
                         scan_points=scan / np.linalg.norm(scan, axis=1, keepdims=True))
    path = write_fit_report(data, tmp_path / "big.html")
    size = path.stat().st_size
    assert size <= 15 * MB, f"{size / MB:.1f} MB"
    page = path.read_text(encoding="utf-8")
    assert "decimated" not in page and "subsampled" not in page  # within the caps: shown whole


def test_large_inputs_are_decimated_and_subsampled_and_the_page_says_so(monkeypatch):
    import surfrec.evaluation.report as report

    monkeypatch.setattr(report, "FIT_MAX_FACES", 1000)
    monkeypatch.setattr(report, "MAX_SCAN_POINTS", 500)
    page = fit_report(fit_data(subdivisions=4)).html  # 5,120 faces, 3,000 scan points
    assert re.search(r"Mesh shown decimated from 5,120 to [0-9,]+ faces", page)
    assert "Scan shown subsampled: 500 of 3,000 points" in page


def test_decimate_mesh_keeps_a_valid_mesh_under_the_cap():
    mesh = trimesh.creation.icosphere(subdivisions=5)
    q = mesh.vertices[:, 2].copy()
    v, f, q2 = decimate_mesh(mesh.vertices, mesh.faces, q, 2000)
    assert 500 < len(f) <= 2000
    assert f.min() >= 0 and f.max() < len(v) and len(q2) == len(v)
    assert np.all(f[:, 0] != f[:, 1]) and np.all(f[:, 1] != f[:, 2]) and np.all(f[:, 0] != f[:, 2])
    assert np.abs(np.linalg.norm(v, axis=1) - 1).max() < 0.1  # still the sphere
    assert np.abs(q2 - v[:, 2]).max() < 0.1  # values follow their vertices
    same = decimate_mesh(mesh.vertices, mesh.faces, q, len(mesh.faces))
    assert same[0] is mesh.vertices  # small enough: untouched


def test_support_colorscale_is_the_render_colour_scale():
    scale = support_colorscale()
    stops = np.array([t for t, _ in scale])
    rgb = np.array([[float(c) for c in re.findall(r"[\d.]+", col)] for _, col in scale]) / 255
    values = np.linspace(-1, 6, 141)  # beyond both ends: clipped as in support_colors
    t = np.clip(values / 4.0, 0, 1)
    interpolated = np.stack([np.interp(t, stops, rgb[:, c]) for c in range(3)], axis=1)
    assert np.abs(interpolated - support_colors(values)).max() <= 0.5 / 255 + 1e-9


def test_bad_input_raises_and_writes_nothing(tmp_path):
    data = fit_data()
    data.mesh_faces = np.asarray(data.mesh_faces).copy()
    data.mesh_faces[0, 0] = len(data.mesh_vertices)
    with pytest.raises(InputError, match="mesh_faces index vertices out of range"):
        write_fit_report(data, tmp_path / "r.html")
    with pytest.raises(InputError, match=r"support must have shape \(642,\)"):
        write_fit_report(FitReportData("x", fit_data().mesh_vertices, fit_data().mesh_faces, support=np.ones(3)),
                         tmp_path / "r.html")
    with pytest.raises(InputError, match="support contains 1 NaN"):
        write_fit_report(FitReportData("x", np.eye(3), [[0, 1, 2]], support=[0.0, np.nan, 1.0]), tmp_path / "r.html")
    with pytest.raises(InputError, match="raw_vertices and raw_faces"):
        write_fit_report(FitReportData("x", np.eye(3), [[0, 1, 2]], raw_vertices=np.eye(3)), tmp_path / "r.html")
    with pytest.raises(InputError, match="history lists differ in length"):
        write_fit_report(FitReportData("x", np.eye(3), [[0, 1, 2]], history={"step": [1, 2], "loss": [1.0]}),
                         tmp_path / "r.html")
    with pytest.raises(InputError, match="thumbnail is not PNG"):
        write_bench_report([], {"c": {"m": BenchMesh(np.eye(3), [[0, 1, 2]], thumbnail=b"GIF89a")}},
                           tmp_path / "b.html")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_path_raises_and_leaves_no_partial_file(tmp_path, monkeypatch):
    data = FitReportData("x", np.eye(3), [[0, 1, 2]])
    with pytest.raises(InputError, match="does not exist"):
        write_fit_report(data, tmp_path / "missing" / "r.html")
    with pytest.raises(InputError, match="is a directory"):
        write_fit_report(data, tmp_path)
    (tmp_path / "old.html").write_text("old")

    def full_disk(self, *args, **kwargs):
        Path.write_bytes(self, b"<!DOCTYPE html><html>half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(InputError, match="No space left on device"):
        write_fit_report(data, tmp_path / "old.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.html"]
    assert (tmp_path / "old.html").read_text() == "old"


def test_text_is_escaped():
    data = FitReportData("<b>scan</b>.ply", np.eye(3), [[0, 1, 2]], command="fit '<x>' && rm",
                         decision=[("<i>rule</i>", "a < b")], notes=["</script><script>alert(1)</script>"])
    page = fit_report(data).html
    assert "&lt;b&gt;scan&lt;/b&gt;.ply" in page and "<b>scan" not in page
    assert "&lt;i&gt;rule&lt;/i&gt;" in page and "a &lt; b" in page
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


def test_repr_html_is_an_iframe_holding_the_page():
    report = fit_report(fit_data(gt=False))
    assert isinstance(report, HtmlReport)
    frame = report._repr_html_()
    assert frame.startswith("<iframe ") and frame.endswith("</iframe>")
    srcdoc = re.match(r'<iframe srcdoc="([^"]*)"', frame).group(1)
    assert html.unescape(srcdoc) == report.html
    assert 'sandbox="allow-scripts' in frame


# --------------------------------------------------------------------------------------
# in the browser


def _chromium() -> str | None:
    """$SURFREC_CHROMIUM when set (and only it), else the system Chromium, else None."""
    names = [os.environ[CHROMIUM_ENV]] if os.environ.get(CHROMIUM_ENV) else [
        "chromium", "chromium-browser", "/usr/lib/chromium/chromium"]
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def _missing(problem: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{problem} ($CI is set, so this fails rather than skips)", pytrace=False)
    pytest.skip(problem)


@pytest.fixture(scope="module")
def browser():
    """One headless system Chromium for the module, driven by playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _missing(f"the browser tests need the pip package playwright ({exc}): pip install playwright")
    exe = _chromium()
    if exe is None:
        _missing(f"no Chromium found (apt-get install -y chromium, or set ${CHROMIUM_ENV} to its path;"
                 f" ${CHROMIUM_ENV}={os.environ.get(CHROMIUM_ENV, '')!r})")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Page:
    """A page opened from disk, offline, with every request and console error recorded."""

    def __init__(self, browser, path: Path | None = None, content: str | None = None):
        self.url = path.resolve().as_uri() if path else None
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(offline=True, viewport={"width": 1100, "height": 760})
        self.context.route("**/*", self._route)
        self.context.on("request", lambda r: self.requests.append(r.url))
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        if path is not None:
            self.page.goto(self.url)
        else:
            self.page.set_content(content)

    def _route(self, route):
        if route.request.url == self.url or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            route.abort()

    def wait_ready(self, frame=None) -> None:
        target = frame or self.page
        target.wait_for_selector("body[data-ready]", state="attached", timeout=30_000)
        assert target.evaluate("document.body.dataset.ready") == "1", target.inner_text("#report-error")

    def shot(self, selector: str) -> np.ndarray:
        self.page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        return _image(self.page.locator(selector).screenshot())

    def check_clean(self) -> None:
        allowed = [u for u in self.requests if u == self.url or u.startswith(("data:", "blob:", "about:"))]
        assert self.requests == allowed, f"requests left the page: {sorted(set(self.requests) - set(allowed))}"
        assert self.errors == [], f"console errors: {self.errors}"

    def close(self) -> None:
        self.context.close()


def _image(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.float64)


def _share(mask: np.ndarray) -> float:
    return float(mask.mean())


def _assert_drawn_with_support_colours(img: np.ndarray, red: bool = True) -> None:
    """Not blank, with green (and red) surface in the left 3/4 (away from a colour bar)."""
    img = img[:, : 3 * img.shape[1] // 4]
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    assert img.std() > 20, "the 3D view is blank"
    assert _share((g > r + 40) & (g > b + 40)) > 0.02, "no green (supported) surface drawn"
    assert not red or _share((r > g + 40) & (r > b + 40)) > 0.02, "no red (phantom) surface drawn"


def _toggle(p: Page, selector: str) -> np.ndarray:
    draws = int(p.page.get_attribute("#view", "data-draws"))
    p.page.click(selector)
    p.page.wait_for_function(f"Number(document.getElementById('view').dataset.draws) > {draws}", timeout=30_000)
    return p.shot("#view")


def test_the_harness_sees_a_request_and_a_console_error(browser, tmp_path):
    """The checks below would catch a page that fetches something (the harness works)."""
    path = tmp_path / "leaky.html"
    path.write_text('<!DOCTYPE html><img src="https://example.com/x.png">'
                    '<script>fetch("http://example.com/data.bin").catch(e => console.error("fetch failed"))</script>')
    p = Page(browser, path)
    try:
        p.page.wait_for_function("performance.getEntriesByType('resource').length >= 2", timeout=10_000)
        with pytest.raises(AssertionError, match="requests left the page.*example.com"):
            p.check_clean()
        assert any("fetch failed" in e for e in p.errors)
    finally:
        p.close()


def test_fit_page_in_the_browser(browser, pages):
    p = Page(browser, pages["fit"])
    try:
        p.wait_ready()
        before = p.shot("#view")
        _assert_drawn_with_support_colours(before)
        with_scan = _toggle(p, "#show-scan")
        assert np.abs(with_scan - before).mean() > 0.5, "showing the scan changed nothing"
        with_wire = _toggle(p, "#show-wire")
        assert np.abs(with_wire - with_scan).mean() > 0.5, "the wireframe changed nothing"
        names = p.page.evaluate("document.getElementById('view').data.map(t => t.name)")
        assert names[:2] == ["refined mesh", "wireframe"] and names[2].startswith("scan (3,000 points)")
        _toggle(p, "#show-samples")
        p.page.select_option("#mesh-mode", "both")
        p.page.wait_for_function("document.getElementById('view').data.some(t => t.name === 'raw level set of F')")
        assert p.page.is_visible("#support-legend") and "\u22654 s" in p.page.inner_text("#support-legend")
        colorbar = p.page.evaluate("document.getElementById('view').data[0].colorbar.ticktext")
        assert colorbar[0] == "0" and colorbar[-1] == "\u22654 s"
        charts = p.page.evaluate("""['chart-loss', 'chart-residual', 'chart-newton', 'chart-timings'].map(id => {
            const gd = document.getElementById(id);
            return [gd.data.length, gd.data[0].x.length, gd._fullLayout.yaxis.type];
        })""")
        assert charts[0] == [3, 40, "log"]  # data, loss, surface
        assert charts[1][0] == 3 and charts[1][2] == "log"  # median, p90, converged share
        assert charts[2][:2] == [3, 20]  # k = 1 ... 20
        assert charts[3][:2] == [1, 6]  # six stages
        assert p.page.locator(".gt-row").count() == 3
        assert "closure" in p.page.inner_text("#decision") and "99.10 %" in p.page.inner_text("#support")
        assert "--report sphere.html" in p.page.inner_text("#command")
        p.page.evaluate("Plotly.relayout('view', {'scene.camera.eye': {x: 3, y: 0, z: 0}})")
        p.page.click("#reset-view")
        p.page.wait_for_function("document.getElementById('view').layout.scene.camera.eye.x === 1")
        p.check_clean()
    finally:
        p.close()


def test_notebook_frame_in_the_browser_without_ground_truth(browser):
    """The _repr_html_ iframe draws the page, which has no ground-truth rows."""
    p = Page(browser, content=fit_report(fit_data(gt=False))._repr_html_())
    try:
        frame = p.page.wait_for_selector("iframe").content_frame()
        p.wait_ready(frame)
        assert frame.locator("#ground-truth").count() == 0 and frame.locator(".gt-row").count() == 0
        assert "Chamfer" not in frame.inner_text("body")
        assert frame.evaluate("document.getElementById('chart-loss').data.length") == 3
        _assert_drawn_with_support_colours(_image(frame.locator("#view").screenshot()))
        p.url = "about:srcdoc"
        p.check_clean()
    finally:
        p.close()


@pytest.mark.slow  # a fourth page load (~8 s): `make test` leaves it out
def test_minimal_fit_page_in_the_browser(browser, tmp_path):
    """Only a mesh: no support map, scan, samples, history ... The page still draws."""
    mesh = trimesh.creation.torus(1.0, 0.3)
    path = write_fit_report(FitReportData("torus.ply", mesh.vertices, mesh.faces), tmp_path / "minimal.html")
    p = Page(browser, path)
    try:
        p.wait_ready()
        assert p.page.is_disabled("#show-scan") and p.page.is_disabled("#show-samples")
        assert p.page.locator(".chart").count() == 0 and p.page.locator("#ground-truth").count() == 0
        assert "no support map" in p.page.inner_text("#support-legend")
        before = p.shot("#view")
        assert before.std() > 20
        assert np.abs(_toggle(p, "#show-wire") - before).mean() > 0.5
        p.check_clean()
    finally:
        p.close()


def test_bench_page_in_the_browser(browser, pages):
    p = Page(browser, pages["bench"])
    try:
        p.wait_ready()
        assert p.page.locator("#bench-table tbody tr").count() == 3  # methods
        assert p.page.locator("#bench-table td.cell").count() == 6
        assert p.page.evaluate("[...document.querySelectorAll('#bench-table img')].every(i => i.naturalWidth > 0)")
        assert "timeout" in p.page.inner_text('td.cell[data-case="torus"][data-method="igr"]')
        p.page.click('td.cell[data-case="torus"][data-method="poisson"]')
        p.page.wait_for_selector('body[data-viewer="torus"]', state="attached", timeout=30_000)
        assert p.page.locator("#viewer .viewer-plot").count() == 3
        assert p.page.inner_text("#viewer-title") == "torus"
        _assert_drawn_with_support_colours(p.shot('#viewer .viewer-plot[data-method="surfrec"]'), red=False)
        eyes = p.page.evaluate("""async () => {
            const plots = [...document.querySelectorAll('#viewer .viewer-plot')];
            await Plotly.relayout(plots[0], {'scene.camera': {eye: {x: 0.2, y: 2.5, z: 0.3}}});
            await new Promise(r => setTimeout(r, 200));
            return plots.map(gd => gd.layout.scene.camera.eye);
        }""")
        assert all(e == {"x": 0.2, "y": 2.5, "z": 0.3} for e in eyes), eyes
        p.page.click('td.cell[data-case="sphere"][data-method="igr"]')
        p.page.wait_for_selector('body[data-viewer="sphere"]', state="attached", timeout=30_000)
        assert p.page.locator("#viewer .viewer-plot").count() == 3
        p.check_clean()
    finally:
        p.close()


def test_bench_thumbnails_are_rendered_when_not_given():
    rows, cases = bench_inputs()
    page = bench_report(rows[:1], {"sphere": {"surfrec": cases["sphere"]["surfrec"]}}).html
    assert _markup(page).count('src="data:image/png;base64,') == 1


# --------------------------------------------------------------------------------------
# the pages of a real fit (surfrec fit --report, surfrec report MODEL)


@pytest.fixture(scope="module")
def cli_pages(tmp_path_factory) -> dict[str, Path]:
    from test_report_cli import make_pages

    return make_pages(tmp_path_factory.mktemp("report_cli_pages"))


def test_pages_of_a_real_fit_in_the_browser(browser, cli_pages):
    """The page `surfrec fit --report --gt` wrote, and the one `surfrec report MODEL` wrote
    from the saved model: drawn, every toggle changes the view, the curves hold the fit's
    steps and k = 1..20, ground-truth rows only on the first."""
    for key, with_gt in (("fit", True), ("again", False)):
        p = Page(browser, cli_pages[key])
        try:
            p.wait_ready()
            before = p.shot("#view")
            _assert_drawn_with_support_colours(before, red=False)
            previous = before
            for toggle in ("#show-scan", "#show-samples", "#show-wire"):
                now = _toggle(p, toggle)
                assert np.abs(now - previous).mean() > 0.3, f"{key}: {toggle} changed nothing"
                previous = now
            p.page.select_option("#mesh-mode", "raw")
            p.page.wait_for_function("document.getElementById('view').data.some(t => t.name === 'raw level set of F')")
            assert p.page.is_visible("#support-legend")
            charts = p.page.evaluate("""['chart-loss', 'chart-residual', 'chart-newton', 'chart-timings'].map(id => {
                const gd = document.getElementById(id);
                return gd ? [gd.data.length, gd.data[0].x.length] : null;
            })""")
            assert all(c is not None for c in charts), charts
            assert charts[0][1] >= 5  # loss recorded over the 120 steps
            assert charts[2][1] == 20  # k = 1 ... 20
            assert (p.page.locator(".gt-row").count() > 0) == with_gt, key
            assert ("Chamfer" in p.page.inner_text("body")) == with_gt, key
            assert "surfrec fit" in p.page.inner_text("#command")
            assert "closure" in p.page.inner_text("#decision")
            p.check_clean()
        finally:
            p.close()
