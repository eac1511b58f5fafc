"""End to end: the client against the stand-in Dinero (`dinero_sandbox`), in-process, with every
exchange to the API checked against the contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import httpx
import pytest
from dinero_sandbox import (
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    FakeClock,
    Sandbox,
    SandboxConfig,
    create_sandbox_app,
)
from fastapi import FastAPI

from app.backoff import DINERO_REQUEST
from app.dinero import (
    ApiKeyTokenProvider,
    DineroClient,
    DineroNotPro,
    DineroOutcomeUnknown,
    DineroRateLimited,
    DineroStaleVersion,
    InMemoryPacer,
    LedgerItem,
    LedgerItemLine,
    LegacyApiKeyAuth,
    NoopPacer,
    PurchaseVoucherCreate,
    PurchaseVoucherLine,
    StaticTokenProvider,
    VismaConnectOAuth,
)
from app.dinero.collections import Collection
from tests.dinero.conftest import ContractLog, FakeSleep, RecordingPacer, contract_hooks

BASE_URL = "http://dinero.test"
REDIRECT_URI = "https://bridge.example/v1/dinero/oauth/callback"
PRO = 100001
NO_PRO = 100002


@pytest.fixture
def sandbox_app() -> FastAPI:
    config = SandboxConfig(clock=FakeClock())
    app: FastAPI = create_sandbox_app(config)
    return app


@pytest.fixture
def sandbox(sandbox_app: FastAPI) -> Sandbox:
    handle: Sandbox = sandbox_app.state.sandbox
    return handle


@pytest.fixture
async def sandbox_http(
    sandbox_app: FastAPI, contract_log: ContractLog
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox_app),
        timeout=httpx.Timeout(5.0),
        event_hooks=contract_hooks(contract_log),
    ) as http:
        yield http


@pytest.fixture
def token(sandbox: Sandbox) -> str:
    return str(sandbox.issue_token(lifetime_seconds=365 * 24 * 3600))


def _client(http: httpx.AsyncClient, token: str, org: int = PRO, **kwargs: object) -> DineroClient:
    return DineroClient(
        http,
        BASE_URL,
        org,
        StaticTokenProvider(token),
        NoopPacer(),
        **kwargs,  # type: ignore[arg-type]
    )


class _Forms(HTMLParser):
    """Collects the first form's action and inputs, and its buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.buttons: list[tuple[str, str]] = []
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.action:
            self.action, self._in_form = a.get("action", ""), True
        elif self._in_form and tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")
        elif self._in_form and tag == "button" and a.get("name"):
            self.buttons.append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def _form(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    assert parser.action, html
    return parser


async def test_oauth_connect_with_pkce_then_read_organizations(
    sandbox_http: httpx.AsyncClient,
) -> None:
    oauth = VismaConnectOAuth(
        sandbox_http,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        authorize_url=f"{BASE_URL}/connect/authorize",
        token_url=f"{BASE_URL}/connect/token",
        redirect_uri=REDIRECT_URI,
        revoke_url=f"{BASE_URL}/connect/revocation",
    )
    authorization = oauth.authorization_url()

    # The admin approves ("Godkend") on the consent page; Visma Connect form-posts the code back.
    page = await sandbox_http.get(authorization.url)
    assert page.status_code == 200, page.text
    consent = _form(page.text)
    data = dict(consent.fields)
    approve = next(b for b in consent.buttons if b[1].lower() in ("approve", "godkend", "allow"))
    data[approve[0]] = approve[1]
    callback = await sandbox_http.post(httpx.URL(authorization.url).join(consent.action), data=data)
    if callback.status_code == 302:
        returned = {
            k: v[0] for k, v in parse_qs(urlsplit(callback.headers["location"]).query).items()
        }
    else:
        returned = _form(callback.text).fields
    assert returned["state"] == authorization.state

    tokens = await oauth.exchange_code(returned["code"], authorization.code_verifier)
    assert tokens.refresh_token is not None
    assert tokens.expires_at > datetime.now(UTC)

    client = _client(sandbox_http, tokens.access_token.get_secret_value())
    organizations = {o.id: o for o in await client.list_organizations()}
    assert organizations[PRO].is_pro is True
    assert organizations[PRO].name == "Sandbox ApS"
    assert organizations[NO_PRO].is_pro is False
    v11 = {o.id: o for o in await client.list_organizations(version="v1.1")}
    assert v11[PRO].is_pro is True
    assert v11[NO_PRO].is_pro is False

    refreshed = await oauth.refresh(tokens.refresh_token)
    assert refreshed.access_token.get_secret_value() != tokens.access_token.get_secret_value()
    assert await oauth.revoke(refreshed.refresh_token or refreshed.access_token) is True


async def test_api_key_connection(sandbox_http: httpx.AsyncClient) -> None:
    auth = LegacyApiKeyAuth(
        sandbox_http,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_url=f"{BASE_URL}/dineroapi/oauth/token",
    )
    provider = ApiKeyTokenProvider(auth, API_KEY)
    client = DineroClient(sandbox_http, BASE_URL, PRO, provider, NoopPacer())
    organization = next(o for o in await client.list_organizations() if o.id == PRO)
    assert organization.is_pro
    assert (await client.vat_types())[0].vat_code


async def test_chart_reads(
    sandbox_http: httpx.AsyncClient, token: str, contract_log: ContractLog
) -> None:
    client = _client(sandbox_http, token)
    years = await client.accounting_years()
    assert [y.name for y in years] == ["2024", "2025", "2026"]
    assert years[2].contains(date(2026, 11, 3))

    accounts = await client.entry_accounts()
    purchase = await client.purchase_accounts()
    deposit = await client.deposit_accounts()
    vat_types = await client.vat_types()

    assert accounts
    assert purchase
    assert deposit
    assert all(2000 <= a.account_number <= 9399 for a in purchase)
    assert {a.account_number for a in purchase} <= {a.account_number for a in accounts}
    assert any(d.is_default for d in deposit)
    codes = {v.vat_code: v.vat_rate for v in vat_types}
    assert codes["I25"] == Decimal("0.25")
    assert all(isinstance(rate, Decimal) for rate in codes.values())
    assert len(contract_log.responses) == 5


async def test_organization_without_pro(sandbox_http: httpx.AsyncClient, token: str) -> None:
    client = _client(sandbox_http, token, org=NO_PRO)
    with pytest.raises(DineroNotPro) as caught:
        await client.deposit_accounts()
    assert caught.value.status == 403


async def test_receipt_draft_voucher_and_its_approval(
    sandbox_http: httpx.AsyncClient, token: str, sandbox: Sandbox
) -> None:
    client = _client(sandbox_http, token)
    deposit = next(d for d in await client.deposit_accounts() if d.is_default)
    expense_account = next(
        a for a in await client.purchase_accounts() if not a.is_hidden and a.vat_code == "I25"
    )

    uploaded = await client.upload_file(b"%PDF-1.7 receipt", "kvittering.pdf", "application/pdf")
    assert uploaded.file_guid in {f.file_guid for f in await client.list_files()}

    voucher = PurchaseVoucherCreate(
        purchase_type="cash",
        voucher_date=date(2026, 11, 3),
        deposit_account_number=deposit.account_number,
        file_guid=uploaded.file_guid,
        external_reference=f"exp_{uuid4().hex[:8]}",
        lines=[
            PurchaseVoucherLine(
                amount=Decimal("245.00"),
                account_number=expense_account.account_number,
                vat_code="I25",
                description="Taxa Nord, kundebesøg",
            )
        ],
    )
    draft = await client.create_purchase_voucher(voucher)
    assert draft.is_draft
    assert draft.lines[0].amount_incl_vat_value == Decimal("245.00")
    assert draft.lines[0].vat_amount_value == Decimal("49.00")
    assert draft.external_reference == voucher.external_reference

    assert await client.purchase_vouchers_by_file(uploaded.file_guid) == [draft.guid]

    fetched = await client.get_purchase_voucher(draft.guid)
    assert fetched.timestamp == draft.timestamp
    assert draft.timestamp is not None
    sandbox.approve_purchase_voucher(PRO, str(draft.guid))  # Godkend, in Dinero
    booked = await client.get_purchase_voucher(draft.guid)
    assert booked.is_booked
    assert booked.voucher_number == 1
    with pytest.raises(DineroStaleVersion):
        await client.delete_purchase_voucher(draft.guid, draft.timestamp)

    entries = await client.entries(date(2026, 1, 1), date(2026, 12, 31))
    mine = [e for e in entries if e.voucher_guid == draft.guid]
    assert sum((e.amount for e in mine), Decimal("0")) == Decimal("0")
    assert {e.account_number for e in mine} >= {
        expense_account.account_number,
        deposit.account_number,
    }


async def test_ledger_items_create_book_and_status(
    sandbox_http: httpx.AsyncClient, token: str, sandbox: Sandbox
) -> None:
    client = _client(sandbox_http, token)
    deposit = [d for d in await client.deposit_accounts() if not d.is_hidden]
    assert len(deposit) >= 2
    wallet, bank = deposit[1].account_number, deposit[0].account_number
    # A wallet top-up: debit the card/wallet account, credit the bank (Kassekladde).
    item = LedgerItem(
        id=uuid4(),
        voucher_date=date(2026, 11, 5),
        lines=[
            LedgerItemLine(
                amount=Decimal("500.00"),
                description="Optankning af wallet",
                account_number=wallet,
                account_vat_code="none",
                balancing_account_number=bank,
                balancing_account_vat_code="none",
            )
        ],
    )
    wallet_before = sandbox.balance(PRO, wallet)
    refs = await client.create_ledger_items([item])
    assert refs[0].id == item.id

    statuses = await client.ledger_item_status([item.id])
    version_ref = statuses[0].ref() if refs[0].version is None else refs[0]
    await client.book_ledger_items([version_ref])
    sandbox.complete_ledger_bookings(PRO)
    statuses = await client.ledger_item_status([item.id])
    assert statuses[0].status == "Booked"
    assert statuses[0].voucher_number is not None
    assert sandbox.balance(PRO, wallet) - wallet_before == Decimal("500.00")


async def test_record_pages_walk_a_collection_to_its_last_page(
    sandbox_http: httpx.AsyncClient, token: str
) -> None:
    client = _client(sandbox_http, token)
    names: list[object] = []
    number, last = 0, False
    while not last:
        page = await client.record_page(Collection.CONTACTS, page=number, page_size=7)
        names.extend(r.data["Name"] for r in page.records)
        number, last = number + 1, page.last
    everything = await client.record_page(Collection.CONTACTS, page_size=1000)
    assert len(names) == len(everything.records) >= 20
    assert everything.last
    assert "Aarhus Kaffebrenderi ApS" in names
    for collection in (Collection.SALES, Collection.INVOICES, Collection.TRADE_OFFERS):
        assert (await client.record_page(collection)).records
    products = await client.record_page(Collection.PRODUCTS, page_size=5)
    assert products.records
    assert all(isinstance(p.data["BaseAmountValue"], int | Decimal) for p in products.records)


async def test_entry_changes_over_more_than_31_days(
    sandbox_http: httpx.AsyncClient, token: str
) -> None:
    client = _client(sandbox_http, token)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    changes = await client.entry_changes(start, start + timedelta(days=400))
    guids = [e.entry_guid for e in changes if e.entry_guid is not None]
    assert len(guids) == len(set(guids))


async def test_faults_retry_reads_and_never_writes(
    sandbox_http: httpx.AsyncClient, token: str, sandbox: Sandbox
) -> None:
    sleeps = FakeSleep()
    client = _client(sandbox_http, token, sleep=sleeps, retry=DINERO_REQUEST)

    sandbox.add_fault(kind="error", method="GET", path="/v1/*/vatTypes", status=503, count=1)
    assert await client.vat_types()
    assert len(sleeps.delays) == 1

    sandbox.add_fault(kind="drop", method="POST", path="/v1.2/*/vouchers/purchase", count=1)
    deposit = next(d for d in await client.deposit_accounts() if d.is_default)
    voucher = PurchaseVoucherCreate(
        purchase_type="cash",
        voucher_date=date(2026, 11, 3),
        deposit_account_number=deposit.account_number,
        external_reference="exp_dropped",
        lines=[PurchaseVoucherLine(amount=Decimal("100.00"), account_number=2000)],
    )
    drafts_before = len(sandbox.drafts(PRO))
    with pytest.raises(DineroOutcomeUnknown):
        await client.create_purchase_voucher(voucher)
    # The write happened exactly once; the caller must look before trying again.
    assert len(sandbox.drafts(PRO)) == drafts_before + 1


async def test_rate_limit_is_reported_and_penalized(
    sandbox_http: httpx.AsyncClient, token: str, sandbox: Sandbox
) -> None:
    sandbox.configure(rate_limit_per_minute=3)
    pacer = RecordingPacer()
    client = DineroClient(sandbox_http, BASE_URL, PRO, StaticTokenProvider(token), pacer)
    for _ in range(3):
        await client.vat_types()
    with pytest.raises(DineroRateLimited) as caught:
        await client.vat_types()
    assert caught.value.dinero_message
    assert pacer.penalties == [(PRO, 60.0)]


@pytest.mark.parametrize("window", ["fixed", "sliding"])
async def test_in_memory_pacer_keeps_within_the_limit(
    sandbox_http: httpx.AsyncClient, token: str, sandbox: Sandbox, window: str
) -> None:
    sandbox.configure(rate_limit_per_minute=5, rate_limit_window=window)
    waited: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waited.append(seconds)
        sandbox.clock.advance(seconds)

    def now() -> float:
        return sandbox.now().timestamp()

    pacer = InMemoryPacer(5, clock=now, sleep=fake_sleep)
    client = DineroClient(sandbox_http, BASE_URL, PRO, StaticTokenProvider(token), pacer)
    for _ in range(12):
        await client.vat_types()  # never a 429: bursts of 5, each a window after the last
    assert waited == [pytest.approx(60.5), pytest.approx(60.5)]
