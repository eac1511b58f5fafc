"""The console in a real browser: headless Chromium against a real `dinero-bridge serve`.

One service process (development mode: the sandbox Dinero mounted at /sandbox, an in-process
worker, `FRONTEND_URL` pointing back at the console) and one browser for the module. The tests
are a finance admin's afternoon: sign in as the demo admin, connect organization 100001 through
Dinero's approval page (the sandbox's Godkend), pick the four accounts, rename a category,
watch items the platform exports reach "awaiting approval" and "booked", retry one that failed,
and create an entries data source for a year Dinero does not have. Every page is saved as a
screenshot; the last test checks that the page only ever called the documented API.
"""

from __future__ import annotations

import csv
import io
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.conftest import ENCRYPTION_KEY, JWT_SECRET, WEBHOOK_SECRET
from tests.console.browser import CHROMIUM, CHROMIUM_ARGS, SKIP_REASON, screenshots_dir
from tests.e2e.stack import Process
from tests.netutil import free_port

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=SKIP_REASON)

PRO_ORG = 100001
CARD, OUT_OF_POCKET, BANK = 55030, 55080, 55000
TAXI, HIDDEN_IN_DINERO = 4040, 4130
WAIT_MS = 15_000
FOLLOW_UP_SECONDS = 10


@dataclass
class Service:
    url: str
    process: Process

    @property
    def dinero(self) -> str:
        """The sandbox's control and inspection API (what is in "Dinero")."""
        return f"{self.url}/sandbox/_sandbox"

    def api(self) -> httpx.Client:
        """The expense platform's side: a client with a demo admin's token."""
        token = httpx.post(f"{self.url}/v1/dev/token", json={}, timeout=10).json()["token"]
        return httpx.Client(
            base_url=f"{self.url}/v1/companies/demo",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )


@dataclass
class Recorded:
    """One request the browser made, and which document made it."""

    method: str
    url: str
    resource_type: str
    navigation: bool
    frame_url: str
    authorization: str | None


@dataclass
class Session:
    """The module's browser context and page, and every request they made."""

    context: BrowserContext
    page: Page
    requests: list[Recorded] = field(default_factory=list)
    shots: list[Path] = field(default_factory=list)

    def shot(self, name: str) -> None:
        path = screenshots_dir() / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)


@pytest.fixture(scope="module")
def service(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """`dinero-bridge serve` in development mode, as `./dev serve` runs it, on its own database."""
    directory = tmp_path_factory.mktemp("console")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DINERO_", "APP_"))}
    env |= {
        "APP_ENV": "development",
        "DATABASE_URL": make_database(),
        "AUTH_JWT_SECRET": JWT_SECRET.get_secret_value(),
        "WEBHOOK_SECRET": WEBHOOK_SECRET.get_secret_value(),
        "TOKEN_ENCRYPTION_KEYS": ENCRYPTION_KEY.get_secret_value(),
        "PUBLIC_URL": url,
        "FRONTEND_URL": f"{url}/console",
        "DATA_DIR": str(directory / "data"),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "FOLLOW_UP_INTERVAL_SECONDS": str(FOLLOW_UP_SECONDS),
        "WORKER_POLL_SECONDS": "0.2",
        "WORKER_HEARTBEAT_SECONDS": "1",
    }
    process = Process(
        name="serve",
        args=["serve", "--port", str(port)],
        env=env,
        log=directory / "serve.log",
        ready_url=f"{url}/readyz",
    )
    process.start()
    try:
        process.wait_ready()
        # Ledger items are booked at the first status poll instead of the second, so the
        # runner's poll backoff does not slow the module down (the runner's handling of
        # PendingBooking is tested in tests/exports).
        answer = httpx.patch(f"{url}/sandbox/_sandbox/config", json={"booking_status_polls": 0})
        assert answer.status_code == 200, answer.text
        yield Service(url=url, process=process)
    except BaseException:
        sys.stderr.write(process.tail(80) + "\n")
        raise
    finally:
        process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def session(browser: Browser, service: Service) -> Iterator[Session]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 860}, locale="en-GB", accept_downloads=True
    )
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    page = context.new_page()
    recorded = Session(context=context, page=page)
    errors: list[str] = []

    def on_request(request: Any) -> None:
        recorded.requests.append(
            Recorded(
                method=request.method,
                url=request.url,
                resource_type=request.resource_type,
                navigation=request.is_navigation_request(),
                frame_url=request.frame.url,
                authorization=request.headers.get("authorization"),
            )
        )

    def on_console(message: Any) -> None:
        # The browser logs each 4xx answer (the API's 409 and 422 refusals the tests provoke)
        # as "Failed to load resource"; anything else at error level is the console's fault.
        if message.type == "error" and "Failed to load resource" not in message.text:
            errors.append(message.text)

    context.on("request", on_request)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", on_console)
    try:
        yield recorded
    finally:
        context.close()
    assert errors == [], f"the page reported errors: {errors}"


def dinero_get(service: Service, path: str) -> Any:
    answer = httpx.get(f"{service.dinero}{path}", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def dinero_post(service: Service, path: str, body: dict[str, Any] | None = None) -> Any:
    answer = httpx.post(f"{service.dinero}{path}", json=body or {}, timeout=10)
    assert answer.status_code in (200, 201, 204), answer.text
    return answer.json() if answer.content else None


def item(external_id: str, kind: str, value: int, description: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": external_id,
        "type": kind,
        "date": "2026-11-03",
        "description": description,
        "amount": {"value": value, "currency": "DKK"},
    }
    if kind.endswith("_expense"):
        body["lines"] = [{"account_number": TAXI, "tax_code": "I25", "amount": value}]
        body["employee"] = {"id": "emp_7", "name": "Mette Jensen"}
    return body


def nav(page: Page, name: str) -> None:
    page.locator("nav.tabs").get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def row(page: Page, external_id: str) -> Any:
    return page.locator(f'tr[data-external-id="{external_id}"]')


# --- the journey ------------------------------------------------------------------------------


def test_sign_in_and_connect_through_dinero_approval(session: Session, service: Service) -> None:
    page = session.page
    page.goto(f"{service.url}/console")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    session.shot("01-sign-in")
    page.get_by_role("button", name="Sign in as demo admin").click()

    expect(page.get_by_role("heading", name="Connect Dinero")).to_be_visible()
    expect(page.locator("[data-connection=not_connected]")).to_be_visible()
    page.get_by_label("Firma ID").fill(str(PRO_ORG))
    page.get_by_role("button", name="Continue to Dinero").click()

    # Dinero's approval page (the sandbox's Visma Connect), then back via FRONTEND_URL.
    page.wait_for_url(re.compile(r"/sandbox/connect/authorize\?"))
    expect(page.get_by_role("button", name="Godkend")).to_be_visible()
    session.shot("02-dinero-approval")
    page.get_by_role("button", name="Godkend").click()

    page.wait_for_url(re.compile(r"/console#/connect$"))  # the ?dinero=connected is read, dropped
    expect(page.get_by_text("Dinero is connected: Sandbox ApS")).to_be_visible()
    expect(page.locator("[data-connection=connected]")).to_be_visible()
    expect(page.get_by_text("(Firma ID 100001)")).to_be_visible()
    expect(page.get_by_text("Approved in Dinero (OAuth)")).to_be_visible()
    session.shot("03-connected")


def test_pick_the_four_accounts_and_sync(session: Session, service: Service) -> None:
    page = session.page
    nav(page, "Setup")
    # The sync the connection started fills the dropdowns with the deposit accounts.
    expect(page.locator(f'#acc-deposit_account option[value="{CARD}"]')).to_have_count(1)
    expect(page.locator("[data-ready=false]")).to_have_count(4)
    session.shot("04-setup-before")

    page.get_by_label("Company card / wallet account").select_option(str(CARD))
    page.get_by_label("Out-of-pocket account").select_option(str(OUT_OF_POCKET))
    page.get_by_label("Reimbursement account").select_option(str(BANK))
    page.get_by_label("Top-up account").select_option(str(BANK))
    page.get_by_role("button", name="Save accounts").click()
    expect(page.get_by_text("The accounts are saved.")).to_be_visible()
    expect(page.locator("[data-ready=true]")).to_have_count(4)
    with service.api() as api:
        settings = api.get("/dinero/settings").json()
    assert [settings[k] for k in ("deposit_account", "out_of_pocket_account")] == [
        CARD,
        OUT_OF_POCKET,
    ]
    assert [settings[k] for k in ("reimbursement_account", "top_up_account")] == [BANK, BANK]

    # The accountant hides an expense account in Dinero; "sync now" brings it over.
    dinero_post(service, f"/organizations/{PRO_ORG}/accounts/{HIDDEN_IN_DINERO}/hide")
    page.get_by_role("button", name="Sync now").click()
    expect(page.locator("[data-sync=queued], [data-sync=running]")).to_be_visible()
    expect(page.get_by_role("progressbar", name="Sync progress")).to_be_visible()
    expect(page.locator("[data-sync=succeeded]")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Last synced .* \(\d+ changes\)"))).to_be_visible()
    session.shot("05-setup-ready")


def save_lock_date(session: Session, service: Service, day: str, policy: str) -> dict[str, Any]:
    """Set the Closed period card as an admin does and save it; the settings the API then has."""
    page = session.page
    page.get_by_label("Books closed through").fill(day)
    page.get_by_label("Items dated in the closed period").select_option(policy)
    page.get_by_role("button", name="Save lock date").click()
    said = f"The books are closed through {day}." if day else "No lock date: every period is open."
    expect(page.get_by_text(said)).to_be_visible()
    with service.api() as api:
        settings: dict[str, Any] = api.get("/dinero/settings").json()
    return settings


def test_close_the_books_through_a_date_and_open_them_again(
    session: Session, service: Service
) -> None:
    page = session.page
    nav(page, "Setup")
    settings = save_lock_date(session, service, "2025-12-31", "first_open_day")
    assert settings["books_closed_through"] == "2025-12-31"
    assert settings["closed_period_policy"] == "first_open_day"
    assert settings["deposit_account"] == CARD  # the accounts stay as they were
    session.shot("05b-setup-lock-date")
    # Back on the page later, the card shows what is stored.
    page.reload()
    expect(page.get_by_label("Books closed through")).to_have_value("2025-12-31")
    expect(page.get_by_label("Items dated in the closed period")).to_have_value("first_open_day")

    settings = save_lock_date(session, service, "", "hold")
    assert (settings["books_closed_through"], settings["closed_period_policy"]) == (None, "hold")


def test_create_a_deposit_account_in_dinero_from_setup(session: Session, service: Service) -> None:
    page = session.page
    nav(page, "Setup")
    page.get_by_label("Name in Dinero").fill("Pleo kort")
    page.get_by_label("Account number (optional: the first free one from 55000)").fill("55900")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Account 55900 Pleo kort is in Dinero.")).to_be_visible()
    # Synced at once: the new account is offered in the dropdowns without a sync.
    expect(page.locator('#acc-deposit_account option[value="55900"]')).to_have_count(1)
    with service.api() as api:
        listed = {a["account_number"]: a["name"] for a in api.get("/deposit-accounts").json()}
        settings = api.get("/dinero/settings").json()
    assert listed[55900] == "Pleo kort"
    assert settings["deposit_account"] == CARD  # only created, nothing remapped


def test_rename_a_category_and_see_a_deactivated_one(session: Session, service: Service) -> None:
    page = session.page
    nav(page, "Categories")
    page.get_by_label("Search", exact=True).fill(str(TAXI))
    taxi = page.locator(f'tr[data-account="{TAXI}"]')
    expect(taxi).to_have_count(1)
    name = page.get_by_label(f"Name employees see for {TAXI} Taxa")
    name.fill("Taxi rides")
    name.press("Enter")
    expect(taxi.get_by_text("Saved")).to_be_visible()
    with service.api() as api:
        categories = api.get("/categories").json()
    renamed = next(c for c in categories if c["account_number"] == TAXI)
    assert (renamed["custom_name"], renamed["name"]) == ("Taxi rides", "Taxi rides")
    session.shot("06-categories-renamed")

    page.get_by_label("Search", exact=True).fill("")
    page.get_by_label("Show", exact=True).select_option("inactive")
    hidden = page.locator(f'tr[data-account="{HIDDEN_IN_DINERO}"]')
    expect(hidden.get_by_text("Deactivated: hidden in Dinero")).to_be_visible()
    session.shot("07-categories-deactivated")


def test_watch_exports_reach_awaiting_approval_and_booked(
    session: Session, service: Service
) -> None:
    page = session.page
    nav(page, "Exports")
    expect(page.get_by_text("Nothing has been exported yet.")).to_be_visible()
    with service.api() as api:
        answer = api.post(
            "/exports",
            json={
                "items": [
                    item("exp-1", "card_expense", 24500, "Taxa Nord, client visit"),
                    item("re-1", "reimbursement", 12000, "Reimbursement, Mette Jensen"),
                    item("top-1", "wallet_top_up", 500000, "Wallet top-up, November"),
                ]
            },
        )
        assert answer.status_code == 202, answer.text

    expect(row(page, "exp-1").get_by_text("Awaiting approval (Kladder)")).to_be_visible()
    expect(row(page, "re-1").get_by_text("Booked in Kassekladde")).to_be_visible()
    expect(row(page, "top-1").get_by_text("Booked in Kassekladde")).to_be_visible()
    expect(row(page, "exp-1").get_by_text("Purchase voucher")).to_be_visible()
    expect(row(page, "re-1").get_by_text(re.compile(r"No\. \d+"))).to_be_visible()
    session.shot("08-exports")

    # The accountant clicks Godkend in Dinero; the follow-up notices within its interval.
    with service.api() as api:
        exported = api.get("/export-items", params={"type": "card_expense"}).json()["items"]
    guid = exported[0]["dinero"]["voucher_guid"]
    dinero_post(service, f"/organizations/{PRO_ORG}/vouchers/purchase/{guid}/approve")


def test_a_failed_export_is_retried_from_the_console(session: Session, service: Service) -> None:
    page = session.page
    dinero_post(
        service,
        "/faults",
        {
            "kind": "error",
            "method": "POST",
            "path": f"/v1.2/{PRO_ORG}/vouchers/purchase",
            "status": 400,
            "count": 1,
        },
    )
    with service.api() as api:
        answer = api.post(
            "/exports", json={"items": [item("exp-2", "card_expense", 9900, "Train to Aarhus")]}
        )
        assert answer.status_code == 202, answer.text

    failed = row(page, "exp-2")
    expect(failed.locator("[data-status=failed]")).to_be_visible()
    expect(failed.get_by_text("Dinero says:")).to_be_visible()
    expect(failed.get_by_text("dinero_rejected")).to_be_visible()
    session.shot("09-exports-failed")
    page.get_by_role("button", name="Retry Train to Aarhus").click()
    expect(failed.get_by_text("Awaiting approval (Kladder)")).to_be_visible()
    expect(page.get_by_role("button", name="Retry Train to Aarhus")).to_have_count(0)

    page.get_by_role("link", name="Train to Aarhus").click()
    expect(page.get_by_role("heading", name="Train to Aarhus")).to_be_visible()
    timeline = page.locator("ol.timeline")
    expect(timeline.locator("[data-step=received].done")).to_be_visible()
    expect(timeline.locator("[data-step=draft].current")).to_be_visible()
    expect(timeline.locator("[data-step=approved]:not(.done)")).to_be_visible()
    expect(page.get_by_text("Bilagsoversigt › Kladder")).to_be_visible()  # noqa: RUF001
    expect(page.get_by_text("Mette Jensen")).to_be_visible()
    session.shot("10-item")


def test_an_item_of_a_closed_period_shows_the_day_it_was_posted_on(
    session: Session, service: Service
) -> None:
    page = session.page
    nav(page, "Setup")
    save_lock_date(session, service, "2026-11-09", "first_open_day")
    with service.api() as api:
        answer = api.post(
            "/exports",
            json={"items": [item("re-2", "reimbursement", 3000, "Parking, Mette Jensen")]},
        )
        assert answer.status_code == 202, answer.text

    nav(page, "Exports")
    expect(row(page, "re-2").get_by_text("Booked in Kassekladde")).to_be_visible()
    page.get_by_role("link", name="Parking, Mette Jensen").click()
    expect(page.get_by_role("heading", name="Parking, Mette Jensen")).to_be_visible()
    facts = page.locator(".fact")
    expect(facts.filter(has_text="Posted in Dinero on").locator("dd")).to_have_text("10 Nov 2026")
    own = facts.filter(has=page.locator("dt", has_text=re.compile(r"^Date$")))
    expect(own.locator("dd")).to_have_text("3 Nov 2026")
    session.shot("10b-item-posted-after-the-lock-date")
    with service.api() as api:
        listed = api.get("/export-items", params={"type": "reimbursement"}).json()["items"]
    (posted,) = [i for i in listed if i["external_id"] == "re-2"]
    assert (posted["date"], posted["posting_date"]) == ("2026-11-03", "2026-11-10")

    nav(page, "Setup")
    save_lock_date(session, service, "", "hold")


def test_an_entries_data_source_for_a_wrong_year_offers_the_valid_ones(
    session: Session, service: Service
) -> None:
    page = session.page
    nav(page, "Data sources")
    expect(page.get_by_text("No data sources yet.")).to_be_visible()
    page.get_by_label("First day").fill("2021-01-01")
    page.get_by_label("Last day").fill("2021-12-31")
    page.get_by_label("Update").select_option("1440")
    page.get_by_role("button", name="Create data source").click()

    offered = page.get_by_role("group", name="Dinero has these accounting years. Choose one:")
    expect(offered.get_by_role("button")).to_have_count(3)
    expect(page.get_by_text("accounting_year_unknown")).to_be_visible()
    session.shot("11-data-source-valid-years")

    offered.get_by_role("button", name=re.compile(r"^2026 ")).click()
    expect(page.get_by_label("First day")).to_have_value("2026-01-01")
    page.get_by_role("button", name="Create data source").click()
    expect(page.get_by_text('"Accounting Year 2026" was created')).to_be_visible()
    card = page.locator("section.source", has_text="Accounting Year 2026")
    expect(card.locator("[data-source-status=ready]")).to_be_visible()
    with page.expect_download() as download:
        card.get_by_role("button", name="Download Accounting Year 2026 as CSV").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text("utf-8"))))
    assert len(rows) >= 3, rows  # a header, and the entries of the two items booked above
    assert download.value.suggested_filename == "Accounting-Year-2026-entries.csv"
    session.shot("12-data-sources")


def test_the_approved_draft_shows_as_booked(session: Session, service: Service) -> None:
    page = session.page
    nav(page, "Exports")
    expect(row(page, "exp-1").get_by_text("Approved (Godkend) · booked")).to_be_visible(
        timeout=(3 * FOLLOW_UP_SECONDS + 10) * 1000
    )
    session.shot("13-exports-booked")


def test_switching_organization_says_what_it_means(session: Session, service: Service) -> None:
    page = session.page
    nav(page, "Connect")
    page.get_by_role("button", name="Reconnect…").click()
    page.get_by_label("Firma ID").fill("100002")
    page.get_by_role("button", name="Continue to Dinero").click()
    warning = page.get_by_role("alert").filter(has_text="Another organization?")
    expect(warning.get_by_text("exports are in Dinero organization 100001")).to_be_visible()
    expect(page.get_by_role("button", name="Yes, connect Firma ID 100002")).to_be_visible()
    session.shot("14-connect-switch-guard")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("[data-connection=connected]")).to_be_visible()


def test_narrow_screen_and_danish(session: Session, service: Service) -> None:
    page = session.page
    nav(page, "Exports")
    page.get_by_role("button", name="DA").click()
    expect(page.get_by_role("heading", name="Eksporter")).to_be_visible()
    expect(row(page, "re-1").get_by_text("Bogført i Kassekladden")).to_be_visible()
    session.shot("15-exports-danish")
    page.set_viewport_size({"width": 375, "height": 812})
    try:
        for tab, shot in (("Eksporter", "16-mobile-exports"), ("Opsætning", "17-mobile-setup")):
            nav(page, tab)
            page.wait_for_timeout(300)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"{tab} is wider than the screen: {width}px"
            session.shot(shot)
    finally:
        page.set_viewport_size({"width": 1280, "height": 860})
        page.get_by_role("button", name="EN").click()


def test_a_token_handed_over_in_the_fragment_signs_in_and_leaves_the_address(
    browser: Browser, service: Service
) -> None:
    token = httpx.post(f"{service.url}/v1/dev/token", json={}, timeout=10).json()["token"]
    context = browser.new_context(locale="en-GB")
    try:
        page = context.new_page()
        page.goto(f"{service.url}/console#token={token}")
        expect(page.get_by_role("heading", name="Connect Dinero")).to_be_visible()
        assert token not in page.url
        assert page.evaluate("sessionStorage.getItem('dinero-console.token')") == token
        assert page.evaluate("Object.keys(localStorage)") in ([], ["dinero-console.lang"])
        page.reload()
        expect(page.get_by_role("heading", name="Connect Dinero")).to_be_visible()
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('dinero-console.token')") is None
    finally:
        context.close()


# --- what the page called -----------------------------------------------------------------------


def _documented(repo_root: Path) -> list[tuple[str, re.Pattern[str]]]:
    document = yaml.safe_load((repo_root / "openapi.yaml").read_text(encoding="utf-8"))
    routes = []
    for template, operations in document["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{[^/}]+\}", "[^/]+", template) + "$")
        for method in operations:
            if method in {"get", "put", "post", "patch", "delete"}:
                routes.append((method.upper(), pattern))
    return routes


def test_the_console_only_calls_the_documented_api(
    session: Session, service: Service, repo_root: Path
) -> None:
    """Every request the console's page made is its own file or an operation of openapi.yaml."""
    page = session.page
    for tab in ("Connect", "Setup", "Categories", "Exports", "Data sources"):
        nav(page, tab)  # every page at least once, whatever ran before
        page.wait_for_timeout(200)
    documented = _documented(repo_root)
    origin = urlsplit(service.url)
    console_calls, unknown = [], []
    for request in session.requests:
        url = urlsplit(request.url)
        if url.scheme in {"blob", "data"} or url.path == "/favicon.ico":
            continue  # a download's blob; the browser's own icon probe (on Dinero's page)
        on_console = urlsplit(request.frame_url).path.startswith("/console")
        if not on_console and not request.navigation:
            continue  # Dinero's own approval page loading its own things
        assert (url.scheme, url.netloc) == (origin.scheme, origin.netloc), request
        if request.navigation:
            allowed = (
                url.path in {"/console", "/console/"}
                or url.path.startswith("/sandbox/connect/authorize")  # Dinero's approval page
                or url.path == "/v1/dinero/oauth/callback"
            )
            if not allowed:
                unknown.append(request)
            continue
        if url.path.startswith("/console/assets/"):
            continue
        if any(m == request.method and p.match(url.path) for m, p in documented):
            console_calls.append(request)
            if url.path != "/v1/dev/token":
                assert (request.authorization or "").startswith("Bearer "), request
        else:
            unknown.append(request)
    assert unknown == [], "calls outside the documented API:\n" + "\n".join(
        f"{r.method} {r.url}" for r in unknown
    )
    called = {
        (r.method, re.sub(r"/[0-9a-f-]{36}", "/{id}", urlsplit(r.url).path)) for r in console_calls
    }
    assert ("POST", "/v1/companies/demo/export-items/{id}/retry") in called
    assert ("PUT", "/v1/companies/demo/dinero/settings") in called
    assert ("PATCH", "/v1/companies/demo/categories/{id}") in called
    assert len(called) >= 15, sorted(called)

    # The token is never in an address, and never in the service's log.
    token = page.evaluate("sessionStorage.getItem('dinero-console.token')")
    assert token
    assert not any(token in r.url or "token=" in urlsplit(r.url).query for r in session.requests)
    assert token not in service.process.log.read_text(errors="replace")
    assert all(shot.stat().st_size > 10_000 for shot in session.shots)
