"""Screenshots of report pages made by the real commands, for docs/figures and the README.

Make the pages first (the demo scan and the bench; a few minutes), then photograph them in
headless Chromium (the system package, driven by the pip package ``playwright``; offline,
swiftshader WebGL)::

    surfrec fit data/example.xyz -o out/example.ply --save-model out/example.pt \
        --report out/example.html --gt data/example.gt.ply
    surfrec bench ../shared/data/bench --methods surfrec,poisson --out bench_out --html bench_out/bench.html
    python benchmarks/report_screenshots.py docs/figures --fit out/example.html --bench bench_out/bench.html

writes ``report_fit.png`` (the top of the fit page: the 3D view with its support map and the
toggles), ``report_fit_story.png`` (the whole page) and ``report_bench.png`` (the table,
after opening the first case's viewer).
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

log = logging.getLogger("report_screenshots")

CHROMIUM_ARGS = ["--use-gl=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox", "--disable-gpu",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--proxy-server=http://127.0.0.1:9"]


def screenshot(pages: list[tuple[Path, Path, str | None, bool]], chromium: str) -> None:
    """Open each page from disk and write a PNG (after clicking ``click`` if given; the
    whole page when ``full``, else the window)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        for html, png, click, full in pages:
            context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.goto(html.resolve().as_uri())
            page.wait_for_selector("body[data-ready='1']", state="attached", timeout=60_000)
            if click:
                page.click(click)
                page.wait_for_selector("body[data-viewer]:not([data-viewer=''])", state="attached", timeout=60_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(png), full_page=full)
            log.info("wrote %s", png)
            context.close()
        browser.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="folder for the PNGs")
    parser.add_argument("--fit", type=Path, required=True, help="a page of `surfrec fit --report`")
    parser.add_argument("--bench", type=Path, required=True, help="a page of `surfrec bench --html`")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium",
                        help="Chromium binary (default: the system one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    screenshot([(args.fit, args.out / "report_fit.png", None, False),
                (args.fit, args.out / "report_fit_story.png", None, True),
                (args.bench, args.out / "report_bench.png", "#bench-table td.cell", True)], args.chromium)


if __name__ == "__main__":
    main()
