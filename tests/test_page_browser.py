"""The client page in headless Chromium (Debian's chromium + chromedriver, driven by Selenium):
both widths without horizontal scrolling, the subscribe links, the copy button, axe-core.
Screenshots go to test-artifacts/. Outside CI a missing browser skips; with CI set it fails."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.page_support import PageSite, start_site
from tests.support import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
AXE = ROOT / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts"


def _missing() -> str:
    if CHROMIUM is None or CHROMEDRIVER is None:
        return "chromium/chromedriver not installed (scripts/browser-setup.sh)"
    if not AXE.is_file():
        return "axe-core not installed in .cache/npm (scripts/browser-setup.sh)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (pip install -e '.[test]')"
    return ""


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    reason = _missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests need their real parts in CI: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--no-first-run", "--disable-extensions", "--hide-scrollbars"):
        options.add_argument(argument)  # fmt: skip
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageSite]:
    running = start_site(tmp_path_factory.mktemp("browser"))
    yield running
    running.daemon.stop()


def _at_width(driver: object, width: int) -> None:
    driver.set_window_size(width, 900)  # type: ignore[attr-defined]
    inner = driver.execute_script("return window.innerWidth")  # type: ignore[attr-defined]
    # the window's frame takes part of the size: widen until the page itself has the width
    driver.set_window_size(width + (width - inner), 900)  # type: ignore[attr-defined]


@pytest.mark.parametrize("width", [1280, 360])
def test_page_fits_the_width_without_horizontal_scrolling(
    browser: object, site: PageSite, width: int
) -> None:
    driver = browser
    driver.get(site.page("alpha"))  # type: ignore[attr-defined]
    _at_width(driver, width)
    inner, scroll = driver.execute_script(  # type: ignore[attr-defined]
        "return [window.innerWidth, document.documentElement.scrollWidth]"
    )
    assert inner == width
    assert scroll <= inner, f"horizontal scrolling at {width}px: content is {scroll}px wide"
    assert driver.find_elements("css selector", "li.job")  # type: ignore[attr-defined]
    ARTIFACTS.mkdir(exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")  # type: ignore[attr-defined]
    driver.set_window_size(driver.get_window_size()["width"], min(height + 200, 4000))  # type: ignore[attr-defined]
    shot = ARTIFACTS / f"client-page-{width}.png"
    driver.save_screenshot(str(shot))  # type: ignore[attr-defined]
    assert shot.stat().st_size > 1000


def test_subscribe_links_carry_the_feed_url(browser: object, site: PageSite) -> None:
    driver = browser
    driver.get(site.page("alpha"))  # type: ignore[attr-defined]
    https = site.feed("alpha")
    webcal = "webcal://" + https.split("://", 1)[1]

    def href(element_id: str) -> str:
        return driver.find_element("id", element_id).get_attribute("href")  # type: ignore[attr-defined]

    assert href("link-apple") == webcal and href("link-webcal") == webcal
    google = urlsplit(href("link-google"))
    assert (google.scheme, google.netloc, google.path) == ("https", "calendar.google.com", "/calendar/r")
    assert parse_qs(google.query) == {"cid": [webcal]}
    outlook = urlsplit(href("link-outlook"))
    assert (outlook.netloc, outlook.path) == ("outlook.live.com", "/calendar/0/addfromweb")
    assert parse_qs(outlook.query) == {"url": [https], "name": ["Alpha & Co"]}
    field = driver.find_element("id", "feed-url")  # type: ignore[attr-defined]
    assert field.get_attribute("value") == https
    assert driver.find_element("css selector", "label[for=feed-url]").text  # type: ignore[attr-defined]


def test_copy_button_puts_the_link_on_the_clipboard(browser: object, site: PageSite) -> None:
    driver = browser
    driver.get(site.page("alpha"))  # type: ignore[attr-defined]
    driver.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Browser.grantPermissions",
        {"origin": site.daemon.base, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    button = driver.find_element("id", "copy-button")  # type: ignore[attr-defined]
    assert button.is_displayed()  # shown only when the script ran (CSP allowed it)
    assert button.text == "Copy link"
    button.click()
    status = driver.find_element("id", "copy-status")  # type: ignore[attr-defined]
    driver.implicitly_wait(0)  # type: ignore[attr-defined]
    for _ in range(50):
        if status.text:
            break
        driver.execute_script("return 0")  # type: ignore[attr-defined]
    assert status.text == "Copied"
    pasted = driver.execute_async_script(  # type: ignore[attr-defined]
        "const done = arguments[arguments.length - 1];"
        "navigator.clipboard.readText().then(done, (e) => done('error: ' + e));"
    )
    assert pasted == site.feed("alpha")


@pytest.mark.parametrize("feed", ["alpha", "beta"])
def test_axe_reports_no_serious_or_critical_violations(browser: object, site: PageSite, feed: str) -> None:
    driver = browser
    driver.get(site.page(feed))  # type: ignore[attr-defined]
    _at_width(driver, 360)
    driver.execute_script(Path(AXE).read_text())  # type: ignore[attr-defined]
    result = driver.execute_async_script(  # type: ignore[attr-defined]
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then((r) => done({violations: r.violations.map((v) => "
        "({id: v.id, impact: v.impact, nodes: v.nodes.length})), passes: r.passes.length}),"
        " (e) => done({error: String(e)}));"
    )
    assert "error" not in result, result
    assert result["passes"] > 10  # axe really ran
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == []
    ids = {v["id"] for v in result["violations"]}
    assert "color-contrast" not in ids and "html-has-lang" not in ids
