"""The status page in a real headless Chromium, over `docproc up` with the corpus ingested."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from docproc.inbox.candidates import WAIT_REASONS
from tests.conftest import missing, require, start_up, stop_up, wait_until, wait_watching

pytestmark = pytest.mark.e2e
CORPUS_FOLDERS = ("pdf", "pdf-hard", "images", "images-bad")
LOCKED = "pdf-hard/crazyones-encrypted-256.pdf"


def _browser_binaries() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    missing("needs Debian's chromium and chromium-driver (tests/run.sh installs them as root)")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    require(importlib.util.find_spec("selenium"),
            "selenium is in the test extra: pip install -e '.[test]'")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = _browser_binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="dpchrome-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1300,1800",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    service = Service(executable_path=driver, log_output=str(tmp_path / "chromedriver.log"))
    chrome = webdriver.Chrome(service=service, options=options)
    try:
        yield chrome
    finally:
        chrome.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _docproc(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("DOCPROC_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "docproc", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, env=env)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@pytest.fixture
def up(make_config: Callable[..., Path], tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """Run `docproc up` on the embedded broker; yield its config and the page's address."""
    # A file held open stays waiting (not settled) while the page is looked at.
    config = make_config(broker_url="embedded", watcher={"settle_seconds": 30})
    port = yaml.safe_load(config.read_text())["status_api"]["port"]
    process = start_up(config, tmp_path / "up.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _get(f"{base}/healthz")[0] == 200, 60, interval=0.2,
                   message="/healthz to answer 200")
        wait_watching(lambda: (tmp_path / "up.log").read_text(errors="replace"))
        yield config, base
    finally:
        stop_up(process)


def _tiles(chrome: Any) -> dict[str, int]:
    from selenium.webdriver.common.by import By

    found = {}
    for tile in chrome.find_elements(By.CSS_SELECTOR, "#counts .tile"):
        number = tile.find_element(By.CSS_SELECTOR, ".n").text.replace(",", "")
        found[tile.get_attribute("data-state")] = int(number) if number.isdigit() else -1
    return found


def _waiting_rows(chrome: Any) -> list[list[str]]:
    """Return the waiting panel's rows: reason, then each cell's text."""
    rows: list[list[str]] = chrome.execute_script(
        "return [...document.querySelectorAll('#waiting tbody tr')].map("
        "(r) => [r.dataset.reason, ...[...r.cells].map((c) => c.textContent)])")
    return rows


def _fresh_image(path: Path) -> str:
    """Write a PNG nobody dropped before; return its document id."""
    rng = random.Random()
    image = Image.new("RGB", (240, 160), tuple(rng.randrange(256) for _ in range(3)))
    for _ in range(12):
        x, y = rng.randrange(200), rng.randrange(120)
        image.paste(tuple(rng.randrange(256) for _ in range(3)), (x, y, x + 40, y + 40))
    image.save(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def test_status_page_shows_the_corpus_a_fresh_thumbnail_and_retries_a_failure(
    up: tuple[Path, str], browser: Any, corpus: Path, tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    config, base = up
    inbox = Path(yaml.safe_load(config.read_text())["inbox"])
    ingested = _docproc(config, "ingest", *(str(corpus / f) for f in CORPUS_FOLDERS), "--wait")
    assert ingested.returncode == 1, ingested.stdout + ingested.stderr  # some are meant to fail
    assert " files in " in ingested.stdout and "failed:" in ingested.stdout

    status = json.loads(_docproc(config, "status", "--json").stdout)
    counts = status["counts"]
    assert counts["failed"] >= 10 and counts["done"] >= 50
    assert counts["queued"] == counts["running"] == 0

    browser.get(base + "/")
    wait_until(lambda: _tiles(browser) == counts, 15, interval=0.2,
               message=f"the page's counts to be {counts}")
    assert "worker" in browser.find_element(By.ID, "health").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart rect.done")) >= 1
    assert browser.find_element(By.ID, "problem").get_attribute("hidden") is not None

    # A file dropped while the page is open appears, with its thumbnail, by itself.
    fresh = _fresh_image(tmp_path / "fresh.png")
    shutil.copy(tmp_path / "fresh.png", inbox / "fresh.png")

    def fresh_thumbnail() -> bool:
        images = browser.find_elements(By.CSS_SELECTOR, f'.doc[data-key="{fresh}"] img.thumb')
        return bool(images) and bool(browser.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", images[0]))

    wait_until(fresh_thumbnail, 20, interval=0.2, message="the fresh image's thumbnail")

    # Retrying a failure from the page sends it again; it comes back as a new receipt.
    locked = hashlib.sha256((corpus / LOCKED).read_bytes()).hexdigest()[:12]
    button = wait_until(lambda: browser.find_elements(
        By.CSS_SELECTOR, f'#failures tr[data-key="{locked}"] button.retry'), 10,
        message="the locked PDF among the failures")[0]
    button.click()
    wait_until(lambda: "sent again" in browser.find_element(By.ID, "toast").text, 10,
               message="the retry's confirmation")
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR,
                                             f'#failures tr[data-key="{locked}-2"]'), 20,
               interval=0.2, message="the retried document back among the failures")
    assert not browser.find_elements(By.CSS_SELECTOR, f'#failures tr[data-key="{locked}"]')
    now = json.loads(_docproc(config, "status", "--json").stdout)["counts"]
    assert now["retried"] == 1 and now["failed"] == counts["failed"]
    wait_until(lambda: _tiles(browser) == now, 10, interval=0.2,
               message="the page to agree with docproc status after the retry")
    table = {line.split()[0]: line.split()[-1] for line in
             _docproc(config, "status").stdout.splitlines() if line.strip()}
    assert table["retried"] == "1" and table["failed"] == f"{now['failed']:,}"

    code, body = _get(f"{base}/metrics")
    assert code == 200
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    finished = sum(s.value for s in families["docproc_documents"].samples)
    # Each receipt ended once: the retried attempt, and its new receipt, count apart.
    assert finished == sum(now[s] for s in ("done", "failed", "duplicate", "retried"))
    current = {s.labels["status"]: s.value for s in families["docproc_documents_current"].samples}
    assert current == {state: float(n) for state, n in now.items()}
    assert {"docproc_stage_duration_seconds", "docproc_queue_depth",
            "docproc_watcher_backlog_files", "docproc_watcher_waiting_files",
            "docproc_spool_files", "docproc_workers_online",
            "docproc_oldest_unfinished_age_seconds"} <= set(families)

    # A file its writer holds open is listed with why it waits, and leaves when it goes.
    held, text = inbox / "still writing.txt", b"the first lines of a long export\n"
    with held.open("wb") as writer:
        writer.write(text)
        writer.flush()
        row = wait_until(lambda: [r for r in _waiting_rows(browser)
                                  if r[1:3] == [held.name, f"{len(text)} B"]], 40, interval=0.2,
                         message="the held file in the waiting panel")[0]
        assert row[0] in WAIT_REASONS and row[3] and row[4]
        assert browser.find_element(By.ID, "no-waiting").get_attribute("hidden") is not None
        held.unlink()
    wait_until(lambda: browser.find_element(By.ID, "no-waiting").get_attribute("hidden") is None
               and not _waiting_rows(browser), 15, interval=0.2,
               message="the waiting panel to say none")
