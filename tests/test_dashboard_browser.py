"""The dashboard in headless Chromium (Debian's chromium + chromium-driver, driven by
selenium): login, every page's figures against the API's for a fleet seeded through the API,
the test-push form through the APNs/FCM fakes, no console error, no request leaving relay.

Missing Chromium fails these tests (scripts/ensure-browser installs it); ``-m "not browser"``
deselects them. ``RELAY_SCREENSHOTS=DIR`` saves a screenshot of every page into DIR.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from relay.push.providers import FCM_FAKE_TOKEN
from relay_fakes.fake_apns import FakeAPNs
from relay_fakes.fake_fcm import FakeFCM
from tests.support import RelayServer, eventually, make_settings, started_servers
from tests.test_dashboard import ANDROID, IOS, api_figures, seed_fleet
from tests.test_push import KEY_ID, PROJECT, TEAM_ID, TOPIC, push_apps

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DEAD = "dead" + "0" * 60
T = TypeVar("T")
PAGE_TIMEOUT_S = 30


def require_chromium() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"the dashboard's browser tests need {', '.join(missing)}: run scripts/ensure-browser"
            " (apt-get install -y chromium chromium-driver), or deselect with -m 'not browser'",
            pytrace=False,
        )


def _gone(element: WebElement) -> Callable[[Any], bool]:
    """A wait condition: ``element``'s page was replaced (chromedriver reports a node of an
    old document as stale, or as not belonging to the document)."""

    def check(_driver: Any) -> bool:
        try:
            element.is_enabled()
        except WebDriverException:
            return True
        return False

    return check


class Chromium:
    """A headless Chromium on a fresh profile; every call runs in a thread, so that relay
    (on this test's event loop) answers while the browser waits for it."""

    def __init__(self, base_url: str, profile: str) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
        self.driver.set_page_load_timeout(PAGE_TIMEOUT_S)
        self.driver.set_script_timeout(PAGE_TIMEOUT_S)
        self.base_url = base_url
        self.console_errors: list[str] = []
        self.foreign_requests: list[str] = []

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    async def open(self, path: str) -> None:
        await self.run(self.driver.get, self.base_url + path)
        await self.check()

    async def check(self) -> None:
        """Collect console errors and any request that did not go to relay itself."""
        logs = await self.run(self.driver.get_log, "browser")
        self.console_errors += [e["message"] for e in logs if e["level"] == "SEVERE"]
        for entry in await self.run(self.driver.get_log, "performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                url = message["params"]["request"]["url"]
                # chrome:// is the browser's own start page, inside the binary
                if not url.startswith((self.base_url + "/", "data:", "about:", "chrome:")):
                    self.foreign_requests.append(url)
        resources = await self.run(
            self.driver.execute_script,
            "return performance.getEntriesByType('resource').map(e => e.name)",
        )
        self.foreign_requests += [u for u in resources if not u.startswith(self.base_url + "/")]

    async def text(self, testid: str) -> str:
        elements = await self.run(
            self.driver.find_elements, By.CSS_SELECTOR, f'[data-testid="{testid}"]'
        )
        assert len(elements) == 1, f"{testid}: {len(elements)} elements"
        return str(await self.run(lambda: elements[0].text)).strip()

    async def texts(self, testid: str) -> list[str]:
        elements = await self.run(
            self.driver.find_elements, By.CSS_SELECTOR, f'[data-testid="{testid}"]'
        )
        return [str(await self.run(lambda e=e: e.text)).strip() for e in elements]

    async def fill(self, fields: dict[str, str]) -> None:
        for name, value in fields.items():
            element = await self.run(self.driver.find_element, By.NAME, name)
            await self.run(element.clear)
            await self.run(element.send_keys, value)

    async def submit(self, selector: str) -> None:
        button = await self.run(self.driver.find_element, By.CSS_SELECTOR, selector)
        await self.run(button.click)
        # A click does not wait for the page it posts to: wait until the form's page is gone.
        wait = WebDriverWait(self.driver, PAGE_TIMEOUT_S)
        await self.run(wait.until, _gone(button))
        await self.check()

    async def screenshot(self, name: str) -> None:
        target = os.environ.get("RELAY_SCREENSHOTS")
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            await self.run(self.driver.save_screenshot, str(Path(target) / f"{name}.png"))

    async def path(self) -> str:
        # Through a thread like every driver call: the page may still be loading from relay,
        # whose server runs on this event loop (a blocking call here would wait on itself).
        url = await self.run(lambda: self.driver.current_url)
        return str(url).removeprefix(self.base_url)

    def quit(self) -> None:
        self.driver.quit()


@pytest.fixture(scope="module")
def p8_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
async def fakes(p8_key: ec.EllipticCurvePrivateKey) -> AsyncIterator[tuple[FakeAPNs, FakeFCM]]:
    async with (
        FakeAPNs(
            key_id=KEY_ID, team_id=TEAM_ID, public_key=p8_key.public_key(), topics={TOPIC}
        ) as apns,
        FakeFCM(project_id=PROJECT, access_token=FCM_FAKE_TOKEN) as fcm,
    ):
        apns.answer_prefix("dead", 410)  # as `relay-fakes serve` does for QA's dead tokens
        yield apns, fcm
    assert apns.invalid == [] and fcm.invalid == []


@pytest.fixture
async def push_relay(
    tmp_path: Path, p8_key: ec.EllipticCurvePrivateKey, fakes: tuple[FakeAPNs, FakeFCM]
) -> AsyncIterator[RelayServer]:
    async with started_servers() as start:
        yield await start(make_settings(tmp_path, apps=push_apps(tmp_path, p8_key, *fakes)))


@pytest.fixture
async def chromium(push_relay: RelayServer) -> AsyncIterator[Chromium]:
    require_chromium()
    profile = tempfile.mkdtemp(prefix="relay-chromium-")
    browser = await asyncio.to_thread(Chromium, push_relay.base_url, profile)
    try:
        yield browser
        await browser.check()
        assert browser.console_errors == [], browser.console_errors
        assert browser.foreign_requests == [], browser.foreign_requests
    finally:
        await asyncio.to_thread(browser.quit)
        shutil.rmtree(profile, ignore_errors=True)


async def log_in(chromium: Chromium, key: str) -> None:
    await chromium.fill({"key": key})
    await chromium.submit("form[action='/ui/login'] button")


@pytest.mark.timeout(180)
async def test_the_dashboard_in_chromium(
    push_relay: RelayServer, chromium: Chromium, fakes: tuple[FakeAPNs, FakeFCM]
) -> None:
    relay = push_relay
    seeded = await seed_fleet(relay)
    admin = seeded["admin"]
    await seeded["app"].put(f"/v1/devices/{DEAD}", {"platform": "ios"})
    answer = await admin.post("/v1/test-pushes", {"token": DEAD, "title": "t", "body": "b"})
    assert answer.body["results"][0]["status"] == "invalid_token"  # the fake: unregistered

    # strangers land on the login page; app keys and unknown keys stay there
    await chromium.open("/ui/segments")
    assert (await chromium.path()).startswith("/ui/login")
    await chromium.screenshot("login")
    for key in (await relay.key("app"), "rly_not-a-key"):
        await log_in(chromium, key)
        assert (await chromium.path()).startswith("/ui/login")
        assert "not an admin key" in await chromium.text("login-error")
    await log_in(chromium, await relay.key("admin"))
    assert await chromium.path() == "/ui/segments"

    expected = await api_figures(admin, (DEAD,))
    assert expected["devices-invalid"] == 1
    await chromium.open("/ui/")
    await chromium.screenshot("fleet")
    for testid in ("devices-active", "devices-invalid", "devices-unregistered", "devices-stale"):
        assert int(await chromium.text(testid)) == expected[testid], testid
    assert int(await chromium.text("outbox-pending")) == expected["outbox-pending"]
    assert int(await chromium.text("outbox-dead")) == expected["outbox-dead"]
    await chromium.open("/ui/segments")
    await chromium.screenshot("segments")
    for testid, value in expected.items():
        if testid.startswith("segment-size-"):
            assert int(await chromium.text(testid)) == value, testid

    # the test-push form, through the fakes: a row per device, a link to its trace
    apns, fcm = fakes
    await chromium.open("/ui/test-push")
    await chromium.fill({"token": IOS[0], "title": "Hi", "body": "Test", "deep_link": "shop://x"})
    await chromium.submit("form[action='/ui/test-push'] button[type=submit]")
    assert await chromium.texts("test-push-status") == ["sent"]
    assert len(apns.requests) == 2  # the dead token's push, then this one
    await chromium.screenshot("test-push")
    await chromium.open("/ui/test-push")
    await chromium.fill({"customer_id": "cus_0", "title": "Hi", "body": "To a customer"})
    await chromium.submit("form[action='/ui/test-push'] button[type=submit]")
    assert await chromium.texts("test-push-status") == ["sent"]
    assert len(fcm.requests) == 0 and len(apns.requests) == 3
    await chromium.open("/ui/test-push")
    await chromium.fill({"token": ANDROID[0], "title": "Hi", "body": "Test"})
    await chromium.submit("form[action='/ui/test-push'] button[type=submit]")
    assert await chromium.texts("test-push-status") == ["sent"]
    assert len(fcm.requests) == 1
    delivery_id = await chromium.text("test-push-delivery")
    link = await chromium.run(
        chromium.driver.find_element, By.CSS_SELECTOR, "[data-testid=test-push-trace]"
    )
    await chromium.run(link.click)
    await chromium.check()
    assert await chromium.path() == f"/ui/deliveries/{delivery_id}"
    trace = (await admin.get(f"/v1/deliveries/{delivery_id}")).body
    for step in ("sent", "delivered", "opened", "converted"):
        assert int(await chromium.text(f"funnel-{step}")) == trace["funnel"][step], step
    assert trace["funnel"]["sent"] == 1

    # QA watches the trace fill: the app reports, the open page follows without a reload
    metric = {"id": "qa-1", "metric": "delivered", "token": ANDROID[0], "delivery_id": delivery_id}
    assert (await seeded["app"].post("/v1/metrics", {"metrics": [metric]})).status == 200

    async def delivered() -> bool:
        try:
            return await chromium.text("funnel-delivered") == "1"
        except StaleElementReferenceException:  # replaced by the refresh while being read
            return False

    await eventually(delivered, timeout=15, interval=0.5)
    await chromium.check()
    await chromium.screenshot("delivery")


@pytest.mark.timeout(120)
async def test_pages_work_by_keyboard_and_on_a_phone(
    push_relay: RelayServer, chromium: Chromium
) -> None:
    await seed_fleet(push_relay)
    await chromium.open("/ui/login")
    await log_in(chromium, await push_relay.key("admin"))
    await chromium.run(chromium.driver.set_window_size, 390, 844)
    for path in ("/ui/", "/ui/segments", "/ui/test-push", "/ui/deliveries/dlv-1"):
        await chromium.open(path)
        unlabelled = await chromium.run(
            chromium.driver.execute_script,
            "return [...document.querySelectorAll('input:not([type=hidden]), textarea, select')]"
            ".filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))"
            ".map(e => e.name)",
        )
        assert unlabelled == [], (path, unlabelled)
        overflow = await chromium.run(
            chromium.driver.execute_script,
            "return document.documentElement.scrollWidth - window.innerWidth",
        )
        assert overflow <= 0, (path, overflow)  # readable on a phone: no sideways scrolling
        # keyboard: the first Tab reaches the skip link, which leads to the content
        focused = await chromium.run(
            chromium.driver.execute_script,
            "document.activeElement.blur(); return document.querySelector('a.skip').href",
        )
        assert focused.endswith("#main")
        await chromium.screenshot("phone-" + (path.strip("/").replace("/", "-") or "ui"))
