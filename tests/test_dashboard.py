"""The dashboard (/ui/) over HTTP: login and sessions, CSRF, every page's figures against the
API's for a seeded fleet, bad input, snapshots. tests/test_dashboard_browser.py drives the same
pages in headless Chromium."""

from __future__ import annotations

import asyncio
import re
import time
from html.parser import HTMLParser
from typing import Any

import aiohttp
import pytest

from relay.ui.snapshots import Figure
from tests.support import Api, RelayServer

IOS = [f"{i:02x}" * 32 for i in range(1, 5)]
ANDROID = [f"fcm-token-{i}:APA91b" + "x" * 40 for i in range(1, 4)]


class Page(HTMLParser):
    """The text of every element carrying a data-testid, the forms and their CSRF fields,
    and every URL the page refers to."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.figures: dict[str, list[str]] = {}
        self.forms: list[dict[str, str]] = []
        self.urls: list[str] = []
        self._open: list[tuple[str, str]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "data-testid" in a:
            self._open.append((tag, a["data-testid"]))
            self.figures.setdefault(a["data-testid"], []).append("")
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get")})
        if tag == "input" and a.get("name") == "csrf" and self.forms:
            self.forms[-1]["csrf"] = a.get("value", "")
        for name in ("href", "src", "action"):
            if name in a:
                self.urls.append(a[name])

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for _tag, testid in self._open:
            self.figures[testid][-1] += data

    def figure(self, testid: str) -> str:
        values = self.figures.get(testid, [])
        assert len(values) == 1, f"{testid} appears {len(values)} times"
        return values[0].strip()

    def number(self, testid: str) -> int:
        return int(self.figure(testid))

    @property
    def csrf(self) -> str:
        return next(f["csrf"] for f in self.forms if f.get("csrf"))


class Browser:
    """A cookie-keeping client of relay's dashboard."""

    def __init__(self, relay: RelayServer) -> None:
        self.base = relay.base_url
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.session.close()

    async def get(self, path: str) -> tuple[int, str, Any]:
        async with self.session.get(self.base + path, allow_redirects=False) as r:
            return r.status, await r.text(), r.headers

    async def post(self, path: str, form: dict[str, str]) -> tuple[int, str, Any]:
        async with self.session.post(self.base + path, data=form, allow_redirects=False) as r:
            return r.status, await r.text(), r.headers

    async def page(self, path: str) -> Page:
        status, html, headers = await self.get(path)
        assert status == 200, (path, status, html[:500])
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        return Page(html)

    async def login(self, key: str) -> tuple[int, str, Any]:
        _, html, _ = await self.get("/ui/login")
        return await self.post("/ui/login", {"key": key, "csrf": Page(html).csrf})


async def seed_fleet(relay: RelayServer) -> dict[str, Any]:
    """Devices in every status on both platforms, profiles, a delivery with its funnel."""
    app = await relay.app_api()
    admin = await relay.admin_api()
    for i, token in enumerate(IOS + ANDROID):
        platform = "ios" if token in IOS else "android"
        answer = await app.put(
            f"/v1/devices/{token}", {"platform": platform, "anonymous_id": f"anon-{i}"}
        )
        assert answer.status == 201, answer.text
    for i in range(5):
        answer = await app.post(
            "/v1/identify", {"customer_id": f"cus_{i}", "anonymous_id": f"anon-{i}"}
        )
        assert answer.status in (200, 204), answer.text
    answer = await app.post(f"/v1/devices/{IOS[3]}/refresh", {"new_token": "ab" * 32})
    assert answer.status == 200, answer.text
    assert (await app.delete(f"/v1/devices/{ANDROID[2]}")).status == 204
    now = time.time()
    metrics: list[dict[str, Any]] = [
        {"id": "m1", "metric": "delivered", "token": IOS[0], "delivery_id": "dlv-1"},
        {"id": "m2", "metric": "opened", "token": IOS[0], "delivery_id": "dlv-1"},
        {"id": "m3", "metric": "delivered", "token": ANDROID[0], "delivery_id": "dlv-1"},
        {"id": "m4", "metric": "opened", "token": IOS[1], "delivery_id": "dlv-1"},
        {"id": "m5", "metric": "deep_link_failed", "token": IOS[1], "delivery_id": "dlv-1"},
    ]
    for m in metrics:
        m["timestamp"] = now - 3600
    answer = await app.post("/v1/metrics", {"metrics": metrics})
    assert answer.body["accepted"] == len(metrics), answer.text
    event = {"id": "e1", "name": "Order Completed", "customer_id": "cus_0", "timestamp": now - 60}
    answer = await app.post("/v1/events", {"events": [event]})
    assert answer.status == 200, answer.text
    return {"admin": admin, "app": app}


async def api_figures(admin: Api, extra_tokens: tuple[str, ...] = ()) -> dict[str, int]:
    """What the API says, for every figure the dashboard shows."""
    figures: dict[str, int] = {}
    for status in ("active", "invalid", "unregistered", "stale"):
        figures[f"devices-{status}"] = 0
    for token in [*IOS, "ab" * 32, *ANDROID, *extra_tokens]:
        device = (await admin.get(f"/v1/devices/{token}")).body
        key = f"devices-{device['status']}"
        if key in figures:
            figures[key] += 1
    outbox = (await admin.get("/v1/outbox")).body
    figures["outbox-pending"], figures["outbox-dead"] = outbox["pending"], outbox["dead"]
    for segment in (await admin.get("/v1/segments")).body:
        export = await admin.get(f"/v1/segments/{segment['name']}/export?format=csv")
        figures[f"segment-size-{segment['name']}"] = len(export.text.splitlines()) - 1
    return figures


@pytest.fixture
async def browser(relay: RelayServer) -> Any:
    client = Browser(relay)
    yield client
    await client.close()


async def test_pages_redirect_to_login_until_an_admin_key_logs_in(
    relay: RelayServer, browser: Browser
) -> None:
    for path in ("/ui/", "/ui/segments", "/ui/test-push", "/ui/deliveries/x", "/ui/nope"):
        status, _, headers = await browser.get(path)
        assert status == 303 and headers["Location"].startswith("/ui/login"), path
    status, _, headers = await browser.post("/ui/outbox/replay", {})
    assert status == 303 and headers["Location"] == "/ui/login"
    status, html, headers = await browser.get("/ui/login")
    assert status == 200 and 'name="key"' in html
    assert (await browser.get("/ui/static/app.css"))[0] == 200

    for key in (await relay.key("app"), await relay.key("server"), "rly_unknown", ""):
        status, html, _ = await browser.login(key)
        assert status == 200 and 'data-testid="login-error"' in html, key
        assert (await browser.get("/ui/"))[0] == 303

    status, _, headers = await browser.login(await relay.key("admin"))
    assert status == 303 and headers["Location"] == "/ui/"
    cookie = headers.getall("Set-Cookie")
    session_cookie = next(c for c in cookie if c.startswith("relay_session="))
    assert "HttpOnly" in session_cookie and "SameSite=Strict" in session_cookie
    assert "Secure" not in session_cookie  # plain HTTP here; Secure under HTTPS
    page = await browser.page("/ui/")
    assert page.number("devices-active") == 0

    # logout needs the CSRF token; then the session is gone
    assert (await browser.post("/ui/logout", {"csrf": "wrong"}))[0] == 403
    status, _, headers = await browser.post("/ui/logout", {"csrf": page.csrf})
    assert status == 303 and headers["Location"] == "/ui/login"
    assert (await browser.get("/ui/"))[0] == 303


async def test_login_goes_back_to_the_page_asked_for_and_nowhere_else(
    relay: RelayServer, browser: Browser
) -> None:
    _, _, headers = await browser.get("/ui/segments")
    assert headers["Location"] == "/ui/login?next=%2Fui%2Fsegments"
    _, html, _ = await browser.get(headers["Location"])
    form = {"key": await relay.key("admin"), "csrf": Page(html).csrf}
    status, _, headers = await browser.post("/ui/login", {**form, "next": "/ui/segments"})
    assert headers["Location"] == "/ui/segments"
    _, html, _ = await browser.get("/ui/login")  # each login uses its form's token once
    form["csrf"] = Page(html).csrf
    status, _, headers = await browser.post("/ui/login", {**form, "next": "//evil.example/ui/"})
    assert headers["Location"] == "/ui/"
    _, html, _ = await browser.get("/ui/login")
    form["csrf"] = Page(html).csrf
    # without the login form's CSRF cookie value, nothing happens
    status, html, _ = await browser.post("/ui/login", {**form, "csrf": "forged"})
    assert status == 200 and "login-error" in html


async def test_a_revoked_key_ends_its_sessions(relay: RelayServer, browser: Browser) -> None:
    await browser.login(await relay.key("admin"))
    assert (await browser.get("/ui/"))[0] == 200
    (record,) = [k for k in await relay.store.list_keys() if k.role == "admin"]
    await relay.store.revoke_key(record.id)
    status, _, headers = await browser.get("/ui/")
    assert status == 303 and headers["Location"].startswith("/ui/login")


async def test_every_figure_equals_the_apis_for_a_seeded_fleet(
    relay: RelayServer, browser: Browser
) -> None:
    seeded = await seed_fleet(relay)
    admin: Api = seeded["admin"]
    # an invalid and a stale device: what test pushes and token hygiene do
    await relay.store.invalidate_device("default", IOS[2], "Unregistered", None)
    expected = await api_figures(admin)
    assert expected["devices-active"] > 0 and expected["devices-invalid"] == 1
    assert expected["devices-unregistered"] == 1

    await browser.login(await relay.key("admin"))
    fleet = await browser.page("/ui/")
    segments = await browser.page("/ui/segments")
    for testid, value in expected.items():
        shown = (segments if testid.startswith("segment-") else fleet).number(testid)
        assert shown == value, testid
    assert any(v for k, v in expected.items() if k.startswith("segment-size-"))
    assert "being computed" not in str(fleet.figures)

    trace = (await admin.get("/v1/deliveries/dlv-1")).body
    delivery = await browser.page("/ui/deliveries/dlv-1")
    for step in ("sent", "delivered", "opened", "converted"):
        assert delivery.number(f"funnel-{step}") == trace["funnel"][step], step
    assert delivery.number("funnel-opened") == 2
    _, html, _ = await browser.get("/ui/deliveries/dlv-1")
    assert "No <code>delivered</code> from 1 iOS device" in html  # IOS[1] opened, never delivered

    # the figures follow the data: a new device shows on the next page view
    await seeded["app"].put("/v1/devices/" + "cd" * 32, {"platform": "ios"})
    assert (await browser.page("/ui/")).number("devices-active") == expected["devices-active"] + 1


async def test_another_app_is_chosen_with_app_and_unknown_apps_are_404(
    relay: RelayServer, browser: Browser
) -> None:
    await seed_fleet(relay)
    await browser.login(await relay.key("admin"))
    assert (await browser.page("/ui/")).number("devices-active") > 0
    assert (await browser.page("/ui/?app=other")).number("devices-active") == 0
    assert (await browser.page("/ui/segments")).number("segment-size-unreachable") == 0
    status, html, _ = await browser.get("/ui/?app=nope")
    assert status == 404 and "nope" in html


async def test_bad_input_gets_a_page_never_a_500(relay: RelayServer, browser: Browser) -> None:
    await browser.login(await relay.key("admin"))
    for path in ("/ui/deliveries/unknown", "/ui/deliveries/" + "x" * 200, "/ui/no-such-page"):
        status, html, headers = await browser.get(path)
        assert status == 404 and headers["Content-Type"].startswith("text/html"), path
    status, html, _ = await browser.get("/ui/segments/nope/export?format=csv")
    assert status == 404 and "push_engaged" in html
    status, html, _ = await browser.get("/ui/segments/push_engaged/export?format=xml")
    assert status == 200 and "csv or jsonl" in html
    csrf = (await browser.page("/ui/test-push")).csrf
    for form, message in (
        ({}, "either a device token or a customer id"),
        ({"token": "a b"}, "token"),
        ({"token": "abc", "customer_id": "c"}, "one of them"),
        ({"token": "never-registered"}, "not registered"),
        ({"customer_id": "x" * 200}, "customer id"),
        ({"token": "abc", "title": "x" * 5000}, "title"),
    ):
        status, html, _ = await browser.post("/ui/test-push", {"csrf": csrf, **form})
        page = Page(html)
        assert status == 200, form
        assert message in page.figure("test-push-error"), (form, page.figure("test-push-error"))
    # a form without its token changes nothing
    status, html, _ = await browser.post("/ui/outbox/replay", {"csrf": "forged"})
    assert status == 403 and "expired" in html
    status, _, headers = await browser.post("/ui/outbox/replay", {"csrf": csrf})
    assert status == 303 and headers["Location"] == "/ui/?replayed=0"
    status, html, _ = await browser.post("/ui/segments/push_engaged/sync", {"csrf": csrf})
    assert status == 200 and "needs [customerio]" in html
    status, _, headers = await browser.post("/ui/deliveries", {"csrf": csrf, "id": "dlv 1"})
    assert headers["Location"] == "/ui/deliveries/dlv%201"


async def test_pages_refer_to_nothing_outside_relay(relay: RelayServer, browser: Browser) -> None:
    await seed_fleet(relay)
    await browser.login(await relay.key("admin"))
    for path in ("/ui/", "/ui/segments", "/ui/test-push", "/ui/deliveries/dlv-1"):
        page = await browser.page(path)
        for url in page.urls:
            assert url.startswith(("/ui/", "#")), (path, url)
        for form in page.forms:
            assert form.get("csrf"), (path, form)  # every form carries the CSRF token
        for asset in [u for u in page.urls if u.startswith("/ui/static/")]:
            assert (await browser.get(asset))[0] == 200, asset
    status, body, _ = await browser.get("/ui/segments/push_engaged/export?format=csv")
    assert status == 200 and body.startswith("customer_id,email,devices")


async def test_an_expensive_figure_comes_from_a_snapshot_refreshed_in_the_background() -> None:
    calls: list[float] = []
    delay = 0.0

    async def compute(key: str) -> int:
        calls.append(time.time())
        await asyncio.sleep(delay)
        return len(calls)

    figure: Figure[int] = Figure(
        "test",
        compute,
        inline_budget=0.05,
        max_age=0.0,
        wait=0.2,
        background=asyncio.Semaphore(1),
    )
    first = await figure.get("a")
    assert first is not None and first.value == 1 and first.live
    assert (await figure.get("a")).value == 2  # type: ignore[union-attr]  # cheap: every view
    delay = 0.1
    assert (await figure.get("a")).value == 3  # type: ignore[union-attr]  # now found slow
    shown = await figure.get("a")  # expensive: the snapshot, a refresh starts behind it
    assert shown is not None and shown.value == 3 and not shown.live
    await asyncio.sleep(0.2)
    assert (await figure.get("a")).value == 4  # type: ignore[union-attr]
    slow: Figure[int] = Figure(
        "slow",
        compute,
        inline_budget=0.05,
        max_age=60,
        wait=0.01,
        background=asyncio.Semaphore(1),
    )
    assert await slow.get("b") is None  # the first one is still being computed
    await asyncio.sleep(0.15)
    assert (await slow.get("b")) is not None
    await figure.cancel()
    await slow.cancel()


def test_charts_are_inline_svg_with_their_figures_in_text() -> None:
    from relay.ui.charts import bars, sparkline

    svg = bars([1, 0, 3], ["d1", "d2", "d3"], "New <tokens>", "c-new", "x")
    assert svg.startswith("<svg") and "New &lt;tokens&gt;" in svg and "d3: 3" in svg
    assert "4 in all" in svg and 'role="img"' in svg and "http" not in svg.replace('role="img"', "")
    line = sparkline([0, 2], ["a", "b"], "t", "y")
    assert "<polyline" in line and "a: 0, b: 2" in line
    assert not re.search(r"style=", svg + line)  # the page's CSP allows no inline styles
