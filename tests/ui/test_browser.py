"""The app in a real browser: `streamlit run` as a subprocess, driven by headless Chromium.

Skips when Chromium or its driver is absent (`make browser` installs Debian's packages).
Screenshots go to a temporary directory, or to docs/screenshots/ when
LOANRISK_UPDATE_SCREENSHOTS=1 (how the committed ones were made).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "src" / "loanrisk" / "ui" / "app.py"
CHROMIUM = Path("/usr/bin/chromium")
DRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
         "--window-size=1400,1500", "--hide-scrollbars")

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists() or not DRIVER.exists(),
                       reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, "
                              "/usr/bin/chromedriver): run `make browser` as root"),
]
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the dev extra)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"streamlit did not answer on {url} within {timeout:.0f} s")


@contextlib.contextmanager
def streamlit_app(tmp_path: Path, *, home: Path, database_url: str) -> Iterator[str]:
    """`streamlit run` of the app on a free port, headless, over ``home`` and the store at
    ``database_url``; its URL once healthy. Stopped (and its log closed) on exit."""
    port = _free_port()
    env = {**os.environ, "LOANRISK_HOME": str(home), "LOANRISK_DATABASE_URL": database_url}
    env.pop("LOANRISK_API_URL", None)
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false", "--theme.base", "light",
           "--client.toolbarMode", "viewer"]
    log = (tmp_path / "streamlit.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def server(model_home: Path, tmp_path: Path) -> Iterator[str]:
    """`streamlit run` on a free port, headless, over the shared learned home; its store holds
    v1's evaluation rows as applications of the last four weeks, with their outcomes."""
    from ui_helpers import seed_watch_store

    db = f"sqlite:///{tmp_path / 'watch.db'}"
    seed_watch_store(db, weeks=4)
    with streamlit_app(tmp_path, home=model_home, database_url=db) as url:
        yield url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    """Headless Chromium through chromedriver, with a throwaway profile."""
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=opts)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _shots(tmp_path: Path) -> Path:
    if os.environ.get("LOANRISK_UPDATE_SCREENSHOTS") == "1":
        out = ROOT / "docs" / "screenshots"
        out.mkdir(parents=True, exist_ok=True)
        return out
    return tmp_path


def test_decide_models_and_watch_render_in_chromium(server: str, browser: object,
                                              tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    wait = WebDriverWait(driver, 30)  # type: ignore[arg-type]
    shots = _shots(tmp_path)

    def heading(text: str) -> None:
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), text))

    def click(label: str) -> None:
        xpath = f"//button[.//p[normalize-space()='{label}']]"
        wait.until(ec.element_to_be_clickable((By.XPATH, xpath))).click()

    driver.get(server)  # type: ignore[attr-defined]
    heading("Decide")
    assert "Decide" in driver.title or "loanrisk" in driver.title  # type: ignore[attr-defined]
    click("Load an example applicant")
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "example applicant #1"))
    click("Score")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-testid='stMetric']")))
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "Reasons"))
    body = driver.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
    assert "approve" in body or "decline" in body
    time.sleep(1.0)  # let the bar chart finish drawing
    driver.save_screenshot(str(shots / "decide.png"))  # type: ignore[attr-defined]

    driver.set_window_size(1400, 2200)  # type: ignore[attr-defined]  # table + report figures
    driver.get(f"{server}/models")  # type: ignore[attr-defined]
    heading("Models")
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "Promote or roll back"))
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-testid='stImage']")))
    time.sleep(1.0)
    driver.save_screenshot(str(shots / "models.png"))  # type: ignore[attr-defined]

    driver.set_window_size(1400, 1700)  # type: ignore[attr-defined]
    driver.get(f"{server}/watch")  # type: ignore[attr-defined]
    heading("Watch")
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "Decision replay"))
    click("Replay")
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "replayed identically"))
    time.sleep(1.0)  # let the line chart finish drawing
    driver.save_screenshot(str(shots / "watch.png"))  # type: ignore[attr-defined]

    # a servicing file through the upload: checked first, then the good row recorded
    from loanrisk.store import Store

    store = Store(f"sqlite:///{tmp_path / 'watch.db'}")
    app_id = store.list_applications(limit=1, api_key_id=None)[0].id
    upload = tmp_path / "servicing.csv"
    upload.write_text(f"application_id,outcome\n{app_id},charged_off\n{uuid.uuid4()},bad\n")
    field = driver.find_element(By.CSS_SELECTOR, "input[type='file']")  # type: ignore[attr-defined]
    field.send_keys(str(upload))
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "1 row(s) cannot be"))
    click("Record 1 outcome(s)")
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "recorded 1 outcome(s)"))
    assert [(o.outcome, o.source) for o in store.outcomes_of(app_id)][-1] == ("charged_off", "ui")
    store.close()
    for name in ("decide", "models", "watch"):
        assert (shots / f"{name}.png").stat().st_size > 10_000
    shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)
