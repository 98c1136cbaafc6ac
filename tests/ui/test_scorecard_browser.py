"""The Models page's scorecard section in a real browser (headless Chromium), over a home whose
champion is a scorecard. Skips like test_browser.py without Chromium; with
LOANRISK_UPDATE_SCREENSHOTS=1 the screenshot goes to docs/screenshots/scorecard.png."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_browser import CHROMIUM, DRIVER, FLAGS, ROOT, streamlit_app

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists() or not DRIVER.exists(),
                       reason="needs Debian's chromium and chromium-driver: `make browser`"),
]
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the dev extra)")


@pytest.fixture
def card_server(tmp_path: Path) -> Iterator[str]:
    """`streamlit run` over a fresh home holding a scorecard champion (1,500 rows)."""
    sys.path.insert(0, str(ROOT / "tests" / "api"))
    from helpers import home

    from loanrisk.learn.pipeline import LearnOptions, learn

    with home(tmp_path / "home") as path:
        learn(LearnOptions(dataset="lending-club-default", sample=1500,
                           models=("majority", "scorecard"), progress=False))
    with streamlit_app(tmp_path, home=path,
                       database_url=f"sqlite:///{tmp_path / 'store.db'}") as url:
        yield url


def test_scorecard_points_and_reasons_render_in_chromium(card_server: str,
                                                         tmp_path: Path) -> None:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=opts)
    driver.set_page_load_timeout(30)
    shots = (ROOT / "docs" / "screenshots" if os.environ.get("LOANRISK_UPDATE_SCREENSHOTS") == "1"
             else tmp_path)
    try:
        wait = WebDriverWait(driver, 60)
        driver.set_window_size(1400, 1300)
        driver.get(card_server)  # the app first (its navigation), then the page
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Decide"))
        driver.get(f"{card_server}/models")
        try:
            wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"),
                                                        "Scorecard points and reasons"))
        except Exception:
            driver.save_screenshot(str(tmp_path / "failed.png"))
            print(driver.find_element(By.TAG_NAME, "body").text)
            raise
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"),
                                                    "furthest below their maximum"))
        for text in ("600 points at 50:1 odds", "Score (points)", "below maximum"):
            wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), text))
        head = driver.find_element(
            By.XPATH, "//h3[contains(normalize-space(), 'Scorecard points and reasons')]")
        driver.execute_script("arguments[0].scrollIntoView(true);", head)
        time.sleep(1.5)  # let the tables finish drawing
        driver.save_screenshot(str(shots / "scorecard.png"))
    finally:
        driver.quit()
    assert (shots / "scorecard.png").stat().st_size > 10_000
