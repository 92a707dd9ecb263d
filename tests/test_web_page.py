"""The web page in headless Chromium: choose a photo, see the cutout, get a download link."""

from __future__ import annotations

import shutil

import pytest

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is part of the [test] extra")
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium + chromium-driver not installed (make browser)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chrome')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_pick_a_photo_and_get_the_cutout(live_server, browser, photos):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(live_server + "/")
    browser.find_element(By.ID, "file").send_keys(str(photos[0]))
    WebDriverWait(browser, 60).until(lambda d: (d.find_element(By.ID, "result").get_attribute("src") or "").startswith("blob:"))
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return document.getElementById('result').naturalWidth") > 0)
    from PIL import Image

    width = browser.execute_script("return document.getElementById('result').naturalWidth")
    assert width == Image.open(photos[0]).width
    link = browser.find_element(By.ID, "download")
    assert link.is_displayed() and link.get_attribute("download").endswith("-cutout.png")
    assert "Done in" in browser.find_element(By.ID, "status").text


def test_an_error_is_shown_to_the_user(live_server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    bogus = tmp_path / "not-a-photo.png"
    bogus.write_text("plain text")
    browser.get(live_server + "/")
    browser.find_element(By.ID, "file").send_keys(str(bogus))
    WebDriverWait(browser, 30).until(lambda d: "Error 415" in d.find_element(By.ID, "status").text)
    assert "error" in browser.find_element(By.ID, "status").get_attribute("class")
