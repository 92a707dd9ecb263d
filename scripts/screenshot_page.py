"""docs/web-page.png: the web page with a result, in headless Chromium at 1280x800 (for the README).

python -m scripts.screenshot_page [PHOTO] [--out docs/web-page.png]   (needs `make browser` and the [test] extra)
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from scripts.loadgen import running_server

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photo", nargs="?", type=Path, default=ROOT / "tests/data/photos/pexels-photo-374680.jpg")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/web-page.png")
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = Options()
    options.binary_location = shutil.which("chromium")
    profile = tempfile.mkdtemp(prefix="cutout-chrome-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        with running_server() as (url, _process):
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False}
            )
            driver.get(url + "/")
            driver.find_element("id", "file").send_keys(str(args.photo.resolve()))
            WebDriverWait(driver, 90).until(lambda d: "Done in" in d.find_element("id", "status").text)
            driver.find_element("css selector", "input[name=background][value=color]").click()
            driver.execute_script("document.getElementById('bg-color').value = '#7dd3fc'")
            driver.execute_script("document.getElementById('bg-color').dispatchEvent(new Event('change'))")
            WebDriverWait(driver, 90).until(lambda d: "Done in" in d.find_element("id", "status").text)
            driver.execute_script("document.getElementById('compare').value = 45; setCompare();")
            driver.save_screenshot(str(args.out))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
