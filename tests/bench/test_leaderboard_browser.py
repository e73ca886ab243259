"""The leaderboard page in a real headless Chromium: rows shown, headers sort, nothing fetched.

Needs ``pip install playwright`` and Chromium at /usr/bin/chromium (``apt-get install -y chromium``;
no ``playwright install``). Set ``MATPO_CHROMIUM`` to use a browser elsewhere.
"""
import functools
import os
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import pytest
from loopback import serve_on_loopback

from matpo_gym.bench.leaderboard import build_leaderboard
from matpo_gym.bench.run import RunConfig, run

sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs `pip install playwright`")

CHROMIUM = Path(os.environ.get("MATPO_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (or set MATPO_CHROMIUM)"
)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture()
def served_leaderboard(tmp_path):
    """Four real runs (8 rows), built into a page with one plot and served on loopback."""
    runs = tmp_path / "runs"
    for policy in ("scripted", "random"):
        for noise in (0.0, 0.2):
            run(RunConfig(policy=policy, noise=noise, limit=4, out=runs, quiet=True, save_trajectories=False))
    out = tmp_path / "board"
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "accuracy.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40">'
        '<rect width="120" height="40" fill="teal"/></svg>'
    )
    files = build_leaderboard(sorted(runs.iterdir()), out)
    with serve_on_loopback(functools.partial(QuietHandler, directory=str(out))) as base:
        yield base, files.rows


def accuracies(page) -> list[float]:
    return page.locator("table.sortable tbody tr").evaluate_all(
        "rows => rows.map(r => parseFloat(r.querySelector('td:nth-child(5)').dataset.sort))"
    )


def test_leaderboard_page_sorts_in_a_real_browser(served_leaderboard, tmp_path):
    base, expected_rows = served_leaderboard
    assert expected_rows == 8
    requests, problems = [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(15_000)
            page.on("request", lambda request: requests.append(request.url))
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.goto(f"{base}/index.html")

            rows = page.locator("table.sortable tbody tr")
            assert rows.count() == expected_rows
            assert rows.first.is_visible()
            header = page.locator('th[data-column="accuracy"]')
            initial = accuracies(page)
            assert initial == sorted(initial, reverse=True) and len(set(initial)) > 1
            row_texts = sorted(rows.all_inner_texts())

            header.click()
            ascending = accuracies(page)
            assert ascending == sorted(initial) and ascending != initial
            assert header.get_attribute("aria-sort") == "ascending"
            header.click()
            assert accuracies(page) == sorted(initial, reverse=True)
            assert header.get_attribute("aria-sort") == "descending"
            assert sorted(rows.all_inner_texts()) == row_texts  # rows move whole

            page.locator('th[data-column="policy"]').click()
            policies = rows.evaluate_all("rows => rows.map(r => r.cells[0].textContent)")
            assert policies == sorted(policies)

            assert page.locator("#plots img").evaluate("img => img.complete && img.naturalWidth") == 120
            shot = tmp_path / "leaderboard.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 1000 and shot.read_bytes()[:8] == PNG_SIGNATURE
    assert problems == []
    assert requests and all(url.startswith((base, "data:")) for url in requests), requests
