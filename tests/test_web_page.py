"""The web page in headless Chromium: upload, result, layout at desktop and phone sizes, options, download."""

from __future__ import annotations

import base64
import io
import shutil

import numpy as np
import pytest
from PIL import Image

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is part of the [test] extra")
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium + chromium-driver not installed (make browser)")
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}

# Every visible text or control element, with its box; pairs that overlap, except an element and one
# inside it, and the stage's images (they lie under one another by design: the before/after slider).
OVERLAPS_JS = """
const picked = [...document.querySelectorAll('h1, p, label, legend, button, input, select, a, #status, #facts')]
  .filter(el => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
                  return r.width > 2 && r.height > 2 && s.visibility !== 'hidden' && s.opacity !== '0'
                         && !el.closest('[hidden]') && (el.textContent.trim() || el.matches('input, select, button')); });
const bad = [];
for (let i = 0; i < picked.length; i++) for (let j = i + 1; j < picked.length; j++) {
  const a = picked[i], b = picked[j];
  if (a.contains(b) || b.contains(a) || (a.closest('#stage') && b.closest('#stage'))) continue;
  const r = a.getBoundingClientRect(), q = b.getBoundingClientRect();
  const w = Math.min(r.right, q.right) - Math.max(r.left, q.left), h = Math.min(r.bottom, q.bottom) - Math.max(r.top, q.top);
  const name = el => `${el.tagName}#${el.id}:${el.textContent.trim().slice(0, 20)}`;
  if (w > 1 && h > 1) bad.push(`${name(a)} / ${name(b)}`);
}
return bad;
"""
# The displayed result's pixels, as a small data URL (drawn at a fixed size so two results compare).
RESULT_PIXELS_JS = """
const img = document.getElementById('result'), canvas = document.createElement('canvas');
canvas.width = 64; canvas.height = 48;
canvas.getContext('2d').drawImage(img, 0, 0, 64, 48);
return canvas.toDataURL('image/png');
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    downloads = tmp_path_factory.mktemp("downloads")
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
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.downloads = downloads
    yield driver
    driver.quit()


def set_viewport(browser, width: int, height: int) -> None:
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500}
    )


def wait_for_result(browser, previous_src: str = "") -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(d):
        src = d.execute_script("return document.getElementById('result').src") or ""
        loaded = d.execute_script("const i = document.getElementById('result'); return i.complete && i.naturalWidth > 0")
        return src.startswith("blob:") and src != previous_src and loaded and "Done in" in d.find_element("id", "status").text

    WebDriverWait(browser, 90).until(ready)


def result_pixels(browser) -> Image.Image:
    data = browser.execute_script(RESULT_PIXELS_JS).split(",", 1)[1]
    return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGBA")


def test_upload_layout_options_and_download(live_server, browser, photos):
    set_viewport(browser, *VIEWPORTS["desktop"])
    browser.get(live_server + "/")
    assert browser.find_element("id", "download").get_attribute("disabled")  # nothing to download yet
    browser.find_element("id", "file").send_keys(str(photos[0]))
    wait_for_result(browser)
    assert "confidence" in browser.find_element("id", "facts").text
    for name, size in VIEWPORTS.items():
        set_viewport(browser, *size)
        assert browser.execute_script(OVERLAPS_JS) == [], name
        original, result = (browser.find_element("id", i).rect for i in ("original", "result"))
        assert (original["width"], original["height"]) == (result["width"], result["height"]), name  # same size
        page_width = browser.execute_script("return document.documentElement.scrollWidth")
        assert page_width <= size[0], f"{name}: the page scrolls sideways"
    set_viewport(browser, *VIEWPORTS["desktop"])

    transparent = result_pixels(browser)
    src = browser.execute_script("return document.getElementById('result').src")
    browser.find_element("css selector", "input[name=background][value=color]").click()
    wait_for_result(browser, src)
    on_colour = result_pixels(browser)
    assert transparent.tobytes() != on_colour.tobytes()
    assert np.asarray(on_colour)[..., 3].min() == 255  # a colour background is opaque everywhere

    browser.find_element("css selector", "input[name=background][value=transparent]").click()
    wait_for_result(browser, browser.execute_script("return document.getElementById('result').src"))
    browser.find_element("id", "download").click()
    expected = photos[0].stem + "-cutout.png"
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(lambda _d: (browser.downloads / expected).exists())
    downloaded = Image.open(browser.downloads / expected)
    assert downloaded.format == "PNG" and downloaded.mode == "RGBA" and downloaded.size == Image.open(photos[0]).size


def test_an_error_is_shown_in_words(live_server, browser, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    bogus = tmp_path / "not-a-photo.png"
    bogus.write_text("plain text")
    set_viewport(browser, *VIEWPORTS["phone"])
    browser.get(live_server + "/")
    browser.find_element("id", "file").send_keys(str(bogus))
    WebDriverWait(browser, 30).until(lambda d: "Error 415" in d.find_element("id", "status").text)
    status = browser.find_element("id", "status")
    assert "error" in status.get_attribute("class") and "not an image" in status.text
