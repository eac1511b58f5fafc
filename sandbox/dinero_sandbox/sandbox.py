"""`Sandbox`: the Python handle through which tests inspect and drive the stand-in Dinero.

It owns the books of every organization, the logins, clients and API keys, the tokens, the
rate limiter, the fault rules and the request log, and it plays the accountant: approving
(Godkend), editing or deleting drafts, hiding accounts, adding accounting years.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import fields as dataclass_fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from dinero_sandbox import seed
from dinero_sandbox.bookkeeping import Writer
from dinero_sandbox.chart import VAT_TYPES, VatTypeSpec, category_for, standard_chart
from dinero_sandbox.config import Clock, SandboxConfig
from dinero_sandbox.errors import DineroError
from dinero_sandbox.faults import FaultInjector, FaultRule
from dinero_sandbox.ledger import advance
from dinero_sandbox.ratelimit import RateLimiter
from dinero_sandbox.requestlog import RecordedRequest, RequestLog
from dinero_sandbox.state import (
    Account,
    AccountingYear,
    ApiKey,
    Client,
    Entry,
    Ids,
    LedgerItem,
    Login,
    ManualVoucher,
    Organization,
    OrgBooks,
    PurchaseVoucher,
    Record,
    RecordKind,
    StoredFile,
)
from dinero_sandbox.tokens import READ_SCOPE, WRITE_SCOPE, TokenStore
from dinero_sandbox.vouchers import (
    book_purchase_voucher,
    delete_purchase_voucher,
    get_purchase_voucher,
    purchase_lines,
)
from dinero_sandbox.wire import PurchaseVoucherLineCreateModel, raise_if

ACCOUNTANT = "revisor@sandbox.dinero.dk"

# Fields of SandboxConfig that may change at run time (handle and control API).
RUNTIME_SETTINGS = frozenset(
    {
        "rate_limit_per_minute",
        "rate_limit_window",
        "access_token_lifetime_seconds",
        "legacy_token_lifetime_seconds",
        "refresh_token_mode",
        "rotation_grace_seconds",
        "refresh_token_lifetime_seconds",
        "revoke_grant_on_refresh_reuse",
        "authorization_code_lifetime_seconds",
        "require_pkce",
        "booking_delay_seconds",
        "booking_status_polls",
        "max_file_bytes",
        "oversize_file_status",
        "uploaded_filters",
        "latency_ms",
    }
)


class Sandbox:
    """The state and controls of one stand-in Dinero."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.tokens = TokenStore(self.config, self.clock)
        self.rate_limiter = RateLimiter(self.config, self.clock)
        self.faults = FaultInjector(self.config)
        self.log = RequestLog(self.config.max_logged_requests)
        self.ids = Ids(self.config.seed)
        self.clients: dict[str, Client] = {}
        self.logins: dict[str, Login] = {}
        self.api_keys: dict[str, ApiKey] = {}
        self.books: dict[int, OrgBooks] = {}
        self.default_login: str | None = None
        self.reset()

    @property
    def clock(self) -> Clock:
        return self.config.clock

    def now(self) -> datetime:
        return self.clock.now()

    # ---------------------------------------------------------------------------------------
    # Setup

    def reset(self) -> None:
        """Back to the demo state: books, people, tokens, limits, faults and log."""
        self.ids = Ids(self.config.seed)
        self.clients = {}
        self.logins = {}
        self.api_keys = {}
        self.books = {}
        self.default_login = None
        self.tokens.clear()
        self.rate_limiter.reset()
        self.faults.load(self.config.faults)
        self.faults.reseed(self.config.fault_seed)
        self.log.clear()
        if self.config.seed_demo_data:
            seed.populate(self)

    def configure(self, **changes: Any) -> None:
        """Change run-time settings (see `RUNTIME_SETTINGS`); validated like the config."""
        unknown = set(changes) - RUNTIME_SETTINGS
        if unknown:
            raise ValueError(f"not a run-time setting: {', '.join(sorted(unknown))}")
        current = {f.name: getattr(self.config, f.name) for f in dataclass_fields(self.config)}
        SandboxConfig(**{**current, **changes})  # raises ValueError when invalid
        for name, value in changes.items():
            setattr(self.config, name, value)

    def add_client(
        self,
        client_id: str,
        secret: str,
        *,
        redirect_uris: Iterable[str] | None = None,
        name: str = "",
    ) -> Client:
        """Register an OAuth client (redirect URIs: None accepts any)."""
        client = Client(
            client_id=client_id,
            secret=secret,
            redirect_uris=list(redirect_uris) if redirect_uris is not None else None,
            name=name or client_id,
        )
        self.clients[client_id] = client
        return client

    def add_organization(
        self,
        organization_id: int,
        name: str,
        *,
        pro: bool = True,
        years: Iterable[int] = (2024, 2025, 2026),
        chart: bool = True,
        **details: Any,
    ) -> OrgBooks:
        """A new organization with the standard chart, the VAT types and the given years."""
        organization = Organization(id=organization_id, name=name, pro=pro, **details)
        books = OrgBooks(organization=organization)
        if chart:
            for spec in standard_chart():
                books.accounts[spec.number] = Account(
                    number=spec.number,
                    name=spec.name,
                    vat_code=spec.vat_code,
                    category=spec.category,
                    category_name=spec.category_name,
                    hidden=spec.hidden,
                    deposit=spec.deposit,
                    is_default_deposit=spec.number == 55000,
                    is_default_sales=spec.number == 1000,
                )
        books.vat_types = {vat.code: vat for vat in VAT_TYPES}
        for year in years:
            books.years[year] = AccountingYear(year)
        self.books[organization_id] = books
        return books

    def org(self, organization_id: int) -> OrgBooks:
        """One organization's books (KeyError if unknown)."""
        return self.books[organization_id]

    def set_pro(
        self, organization_id: int, pro: bool = True, *, paying: bool | None = None
    ) -> None:
        organization = self.org(organization_id).organization
        organization.pro = pro
        organization.paying_pro = paying

    def add_login(
        self,
        email: str,
        *,
        name: str | None = None,
        organizations: Iterable[int] = (),
        role: str = "Owner",
        default: bool = False,
    ) -> Login:
        """A Dinero login reaching the given organizations."""
        login = Login(
            email=email,
            name=name or email.split("@")[0].title(),
            organization_ids=list(organizations),
            role=role,
        )
        self.logins[email] = login
        if default or self.default_login is None:
            self.default_login = email
        return login

    def set_default_login(self, email: str) -> None:
        """The login the consent page preselects."""
        if email not in self.logins:
            raise KeyError(email)
        self.default_login = email

    def grant_access(self, email: str, organization_id: int) -> None:
        login = self.logins[email]
        if organization_id not in login.organization_ids:
            login.organization_ids.append(organization_id)

    def revoke_access(self, email: str, organization_id: int) -> None:
        login = self.logins[email]
        login.organization_ids = [o for o in login.organization_ids if o != organization_id]

    def add_api_key(self, key: str, organization_id: int) -> ApiKey:
        """A personal-integration API key for one organization."""
        api_key = ApiKey(key=key, organization_id=organization_id)
        self.api_keys[key] = api_key
        return api_key

    def add_vat_type(
        self,
        organization_id: int,
        code: str,
        name: str,
        rate: Decimal | str,
        *,
        kind: str = "purchase",
    ) -> VatTypeSpec:
        """An organization's own VAT type (e.g. a partial purchase VAT)."""
        value = Decimal(str(rate))
        vat = VatTypeSpec(
            code=code,
            name=name,
            rate=value,
            kind="sale" if kind == "sale" else "purchase",
            gross_rate=Decimal("0.25") if value else Decimal(0),
            vat_account=61000 if kind == "sale" else 61010,
        )
        self.org(organization_id).vat_types[code] = vat
        return vat

    # ---------------------------------------------------------------------------------------
    # Tokens

    def issue_token(
        self,
        *,
        client_id: str = seed.CLIENT_ID,
        login: str | None = None,
        organization_id: int | None = None,
        scopes: Iterable[str] = (READ_SCOPE, WRITE_SCOPE),
        lifetime_seconds: int | None = None,
    ) -> str:
        """An access token without the OAuth dance: for a login (default: the default login)
        or, with `organization_id`, an API-key token reaching only that organization."""
        if organization_id is not None:
            grant = self.tokens.new_grant(
                client_id=client_id,
                scopes=frozenset({"read", "write"}),
                kind="legacy",
                organization_id=organization_id,
            )
        else:
            email = login or self.default_login
            if email is None or email not in self.logins:
                raise KeyError(f"no such login: {email}")
            grant = self.tokens.new_grant(
                client_id=client_id, scopes=frozenset(scopes), kind="oauth", login_email=email
            )
        return self.tokens.issue_access(grant, lifetime_seconds).token

    def expire_access_tokens(self) -> int:
        """Expire every access token now; returns how many were live."""
        return self.tokens.expire_access_tokens()

    def revoke_all_tokens(self) -> None:
        self.tokens.revoke_all()

    # ---------------------------------------------------------------------------------------
    # Inspection

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received (oldest first), except the control API's."""
        return self.log.all()

    def find_requests(
        self,
        method: str | None = None,
        path: str | None = None,
        *,
        organization_id: int | None = None,
        status: int | None = None,
    ) -> list[RecordedRequest]:
        """Requests by method, path pattern (shell-style), organization and status."""
        return [
            r
            for r in self.log.all()
            if (method is None or r.method == method.upper())
            and (path is None or fnmatch.fnmatchcase(r.path, path))
            and (organization_id is None or r.organization_id == organization_id)
            and (status is None or r.status == status)
        ]

    def clear_requests(self) -> None:
        self.log.clear()

    def purchase_vouchers(
        self, organization_id: int, *, include_deleted: bool = False
    ) -> list[PurchaseVoucher]:
        books = self.org(organization_id)
        return sorted(
            (v for v in books.purchase_vouchers.values() if include_deleted or not v.deleted_at),
            key=lambda v: v.created_at,
        )

    def drafts(self, organization_id: int) -> list[PurchaseVoucher]:
        """Purchase vouchers waiting in Bilagsoversigt > Kladder."""
        return [v for v in self.purchase_vouchers(organization_id) if v.is_draft]

    def manual_vouchers(self, organization_id: int) -> list[ManualVoucher]:
        books = self.org(organization_id)
        return sorted(
            (v for v in books.manual_vouchers.values() if not v.deleted_at),
            key=lambda v: v.created_at,
        )

    def ledger_items(
        self, organization_id: int, *, include_deleted: bool = False
    ) -> list[LedgerItem]:
        """Ledger items as they are now (inspection never moves a booking along)."""
        books = self.org(organization_id)
        return sorted(
            (i for i in books.ledger_items.values() if include_deleted or not i.deleted_at),
            key=lambda i: i.created_at,
        )

    def files(self, organization_id: int) -> list[StoredFile]:
        return sorted(self.org(organization_id).files.values(), key=lambda f: f.uploaded_at)

    def entries(self, organization_id: int, *, voucher_guid: str | None = None) -> list[Entry]:
        """Booked entries, optionally of one voucher (or ledger item)."""
        return [
            e
            for e in self.org(organization_id).entries
            if voucher_guid is None or e.voucher_guid == voucher_guid
        ]

    def balance(self, organization_id: int, account_number: int) -> Decimal:
        """The saldo of an account over all booked entries."""
        return sum(
            (e.amount for e in self.entries(organization_id) if e.account_number == account_number),
            Decimal(0),
        )

    # ---------------------------------------------------------------------------------------
    # The accountant

    def writer(self, organization_id: int, username: str = ACCOUNTANT) -> Writer:
        return Writer(
            books=self.org(organization_id),
            ids=self.ids,
            now=self.now(),
            username=username,
            by_type="User",
        )

    def approve_purchase_voucher(
        self,
        organization_id: int,
        guid: str,
        *,
        number: int | None = None,
        username: str = ACCOUNTANT,
    ) -> PurchaseVoucher:
        """Press Godkend on a draft: it is booked as the accountant (same rules as the API)."""
        w = self.writer(organization_id, username)
        voucher = get_purchase_voucher(w.books, guid)
        return book_purchase_voucher(w, voucher, timestamp=None, number=number)

    def delete_purchase_voucher(self, organization_id: int, guid: str) -> None:
        """The accountant deletes a voucher (a booked one is reversed)."""
        w = self.writer(organization_id)
        delete_purchase_voucher(w, get_purchase_voucher(w.books, guid), None)

    def edit_purchase_voucher(
        self,
        organization_id: int,
        guid: str,
        *,
        line: int = 0,
        account_number: int | None = None,
        amount: Decimal | str | int | None = None,
        vat_code: str | None = None,
        description: str | None = None,
    ) -> PurchaseVoucher:
        """The accountant edits a draft line (account, amount, VAT code, text)."""
        w = self.writer(organization_id)
        voucher = get_purchase_voucher(w.books, guid)
        if not voucher.is_draft:
            raise DineroError(400, 42, "Only drafts can be edited")
        models = []
        for index, current in enumerate(voucher.lines):
            changed = index == line
            new_account = account_number if changed and account_number else current.account_number
            code: str | None = current.vat_code
            if changed and vat_code is not None:
                code = vat_code
            elif (
                changed and account_number is not None and account_number != current.account_number
            ):
                code = None  # the new account's default VAT code
            models.append(
                PurchaseVoucherLineCreateModel(
                    amount=Decimal(str(amount))
                    if changed and amount is not None
                    else current.amount,
                    account_number=new_account,
                    description=description
                    if changed and description is not None
                    else current.description,
                    vat_code=code,
                )
            )
        errors: dict[str, str] = {}
        lines = purchase_lines(w.books, models, errors)
        raise_if(errors)
        voucher.lines = lines
        voucher.timestamp = w.books.next_timestamp()
        voucher.updated_at = w.now
        return voucher

    def hide_account(self, organization_id: int, number: int, hidden: bool = True) -> Account:
        """Hide (or show again) an account in the chart."""
        account = self.org(organization_id).accounts[number]
        account.hidden = hidden
        return account

    def add_account(
        self,
        organization_id: int,
        number: int,
        name: str,
        *,
        vat_code: str | None = None,
        deposit: bool = False,
        hidden: bool = False,
    ) -> Account:
        """Add an account to the chart (a deposit account with `deposit=True`)."""
        books = self.org(organization_id)
        if number in books.accounts:
            raise ValueError(f"account {number} exists")
        category = category_for(number)
        account = Account(
            number=number,
            name=name,
            vat_code=vat_code,
            category="Liquid Assets" if deposit else category.key,
            category_name="Likvide beholdninger" if deposit else category.danish,
            hidden=hidden,
            deposit=deposit,
        )
        books.accounts[number] = account
        return account

    def add_accounting_year(self, organization_id: int, year: int) -> AccountingYear:
        books = self.org(organization_id)
        books.years.setdefault(year, AccountingYear(year))
        return books.years[year]

    def lock_accounting_year(
        self, organization_id: int, year: int, locked: bool = True
    ) -> AccountingYear:
        """Close (lock) a year: bookings dated in it are refused."""
        accounting_year = self.org(organization_id).years[year]
        accounting_year.locked = locked
        return accounting_year

    def advance_ledger(self, organization_id: int | None = None) -> int:
        """Let due ledger bookings finish (as a status poll would)."""
        targets = [organization_id] if organization_id is not None else list(self.books)
        return sum(advance(self.writer(o), self.config) for o in targets)

    def complete_ledger_bookings(self, organization_id: int | None = None) -> int:
        """Finish every pending ledger booking now, whatever the delay."""
        targets = [organization_id] if organization_id is not None else list(self.books)
        return sum(advance(self.writer(o), self.config, force=True) for o in targets)

    # ---------------------------------------------------------------------------------------
    # Records behind the paged lists

    def records(
        self, organization_id: int, kind: RecordKind, *, include_deleted: bool = True
    ) -> list[Record]:
        items = self.org(organization_id).records[kind].values()
        return [r for r in items if include_deleted or r.deleted_at is None]

    def add_record(
        self,
        organization_id: int,
        kind: RecordKind,
        data: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Record:
        """Add a contact, invoice, credit note, product or trade offer (read-model fields;
        missing ones get realistic defaults)."""
        books = self.org(organization_id)
        values = {**(data or {}), **fields}
        record = seed.new_record(books, kind, self.ids.guid(), values, self.now())
        books.records[kind][record.guid] = record
        return record

    def update_record(
        self,
        organization_id: int,
        kind: RecordKind,
        guid: str,
        data: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Record:
        record = self.org(organization_id).records[kind][guid]
        record.data.update({**(data or {}), **fields})
        record.updated_at = self.now()
        return record

    def delete_record(self, organization_id: int, kind: RecordKind, guid: str) -> Record:
        record = self.org(organization_id).records[kind][guid]
        record.deleted_at = self.now()
        return record

    # ---------------------------------------------------------------------------------------
    # Faults

    def add_fault(self, rule: FaultRule | None = None, /, **fields: Any) -> FaultRule:
        """Add a fault rule, e.g. `add_fault(kind="error", path="/v1.2/*", count=1)`."""
        return self.faults.add(rule if rule is not None else FaultRule(**fields))

    def remove_fault(self, rule_id: str) -> bool:
        return self.faults.remove(rule_id)

    def clear_faults(self) -> None:
        self.faults.clear()
