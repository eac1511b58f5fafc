// Exports: the item log (newest first, cursor paging, filters), each item's state in words,
// Dinero's reference, why it failed (with Dinero's own message) and Retry; an item's page
// with its timeline and what was sent.
import { useCallback, useEffect, useState } from "./vendor/hooks.mjs";
import {
  Card,
  ErrorNotice,
  Facts,
  ITEM_STATUSES,
  ITEM_TYPES,
  ItemStatusBadge,
  Loading,
  Notice,
  PageHeader,
  html,
  isExpense,
  safeHttpUrl,
  useI18n,
  useLoad,
  usePolling,
} from "./ui.js";

const PAGE_SIZE = 25;
const MAX_PAGE = 200;
const SETTLED = new Set(["booked", "failed", "deleted_in_dinero", "reversed"]);
const IN_MOTION = new Set(["queued", "exporting", "reversing"]);
const FAST_POLL_MS = 1500;
const SLOW_POLL_MS = 3000;
// Failed, deleted in Dinero, or waiting for a year Dinero refused as closed (retrying it after
// reopening the year in Dinero sends it again).
const retryable = (item) => item.status === "failed" || item.status === "deleted_in_dinero" ||
  (item.waiting && item.waiting.code === "accounting_year_closed");

function shortGuid(guid) {
  return guid ? `${String(guid).slice(0, 8)}…` : "";
}

export function DineroReference({ item, full = false }) {
  const { t } = useI18n();
  const ref = item.dinero;
  if (!ref || !ref.kind) return html`<span class="muted">—</span>`;
  const link = ref.url ? safeHttpUrl(ref.url) : null;
  const where = t(`dinero.kind.${ref.kind}`);
  const number = ref.voucher_number != null ? t("dinero.voucherNumber", { n: ref.voucher_number }) : null;
  const id = ref.voucher_guid || ref.ledger_item_id;
  if (!full) {
    return html`<span class="dinero-ref">
      <span>${where}</span>
      ${number && html`<strong>${number}</strong>`}
      ${id && html`<code title=${id}>${shortGuid(id)}</code>`}
      ${link && html`<a href=${link} target="_blank" rel="noopener noreferrer">${t("dinero.open")}</a>`}
    </span>`;
  }
  return html`<${Facts} rows=${[
    [t("dinero.where"), where],
    number && [t("dinero.number"), number],
    ref.voucher_guid && [t("dinero.voucherGuid"), html`<code>${ref.voucher_guid}</code>`],
    ref.ledger_item_id && [t("dinero.ledgerId"), html`<code>${ref.ledger_item_id}</code>`],
    ref.file_guid && [t("dinero.fileGuid"), html`<code>${ref.file_guid}</code>`],
    [t("dinero.findIt"), link
      ? html`<a href=${link} target="_blank" rel="noopener noreferrer">${t("dinero.open")}</a>`
      : t(isExpense(item.type) ? (item.status === "booked" ? "dinero.path.booked" : "dinero.path.draft") : "dinero.path.ledger")],
  ]} />`;
}

function Failure({ failure }) {
  const { t } = useI18n();
  if (!failure) return null;
  return html`<div class="failure">
    <p>${failure.message || failure.code}</p>
    ${failure.dinero_message && html`<p class="dinero-says"><strong>${t("common.dineroSays")}</strong> ${failure.dinero_message}</p>`}
    <p class="code">${t("common.code")}: <code>${failure.code}</code></p>
  </div>`;
}

function RetryButton({ item, api, onDone, canEdit }) {
  const { t } = useI18n();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  if (!canEdit || !retryable(item)) return null;
  async function retry() {
    setBusy(true);
    setError(null);
    try {
      onDone(await api.post(`/export-items/${item.id}/retry`));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return html`<span class="retry">
    <button type="button" class="button button-small button-primary" onClick=${retry} disabled=${busy}
      aria-label=${t("exports.retryFor", { what: item.description || item.external_id })}>${t("exports.retry")}</button>
    ${error && html`<span class="bad" role="alert">${error.problem?.detail || error.message}</span>`}
  </span>`;
}

export function ExportsPage({ api, canEdit }) {
  const { t, day, money, clock } = useI18n();
  const [status, setStatus] = useState("");
  const [type, setType] = useState("");
  const [items, setItems] = useState(null);
  const [cursor, setCursor] = useState(null);
  const [error, setError] = useState(null);
  const [updatedAt, setUpdatedAt] = useState(null);
  const [loadingMore, setLoadingMore] = useState(false);

  const query = useCallback(
    (extra) => ({ status: status || null, type: type || null, ...extra }),
    [status, type],
  );

  const reload = useCallback(
    async (size) => {
      try {
        const page = await api.get("/export-items", query({ limit: size || PAGE_SIZE }));
        setItems(page.items);
        setCursor(page.next_cursor);
        setError(null);
        setUpdatedAt(new Date());
      } catch (err) {
        setError(err);
      }
    },
    [api, query],
  );

  useEffect(() => {
    setItems(null);
    reload(PAGE_SIZE);
  }, [reload]);

  // Watch states change: the loaded items are read again, often while some are on their way.
  const moving = items !== null && items.some((i) => IN_MOTION.has(i.status));
  usePolling(
    () => reload(Math.min(MAX_PAGE, Math.max(PAGE_SIZE, items ? items.length : 0))),
    moving ? FAST_POLL_MS : SLOW_POLL_MS,
  );

  async function more() {
    setLoadingMore(true);
    try {
      const page = await api.get("/export-items", query({ limit: PAGE_SIZE, cursor }));
      setItems((current) => [...current, ...page.items.filter((i) => !current.some((c) => c.id === i.id))]);
      setCursor(page.next_cursor);
    } catch (err) {
      setError(err);
    } finally {
      setLoadingMore(false);
    }
  }

  function replace(updated) {
    setItems((current) => current.map((i) => (i.id === updated.id ? { ...i, ...updated } : i)));
  }

  return html`
    <${PageHeader} title=${t("exports.title")} intro=${t("exports.intro")} />
    <div class="toolbar">
      <div class="field">
        <label for="filter-status">${t("exports.filterStatus")}</label>
        <select id="filter-status" value=${status} onChange=${(e) => setStatus(e.currentTarget.value)}>
          <option value="">${t("exports.allStatuses")}</option>
          ${ITEM_STATUSES.map((s) => html`<option key=${s} value=${s}>${t(`status.${s}`)}</option>`)}
        </select>
      </div>
      <div class="field">
        <label for="filter-type">${t("exports.filterType")}</label>
        <select id="filter-type" value=${type} onChange=${(e) => setType(e.currentTarget.value)}>
          <option value="">${t("exports.allTypes")}</option>
          ${ITEM_TYPES.map((s) => html`<option key=${s} value=${s}>${t(`type.${s}`)}</option>`)}
        </select>
      </div>
      <p class="muted updated" aria-live="off">${updatedAt && t("exports.updated", { time: clock(updatedAt) })}</p>
    </div>
    <${ErrorNotice} error=${error} />
    ${items === null
      ? html`<${Loading} />`
      : items.length === 0
        ? html`<p class="empty">${status || type ? t("exports.noneFiltered") : t("exports.none")}</p>`
        : html`<div class="table-wrap"><table class="table table-cards exports">
            <thead><tr>
              <th scope="col">${t("exports.date")}</th>
              <th scope="col">${t("exports.what")}</th>
              <th scope="col" class="num">${t("exports.amount")}</th>
              <th scope="col">${t("exports.status")}</th>
              <th scope="col">${t("exports.dinero")}</th>
              <th scope="col"><span class="sr-only">${t("exports.actions")}</span></th>
            </tr></thead>
            <tbody>
              ${items.map(
                (item) => html`<tr key=${item.id} data-external-id=${item.external_id} data-status=${item.status}>
                  <td data-label=${t("exports.date")} class="nowrap">${day(item.date)}</td>
                  <td data-label=${t("exports.what")}>
                    <a href=${`#/exports/${item.id}`} class="item-link">${item.description || item.external_id}</a>
                    <span class="sub">${t(`type.${item.type}`)} · <code>${item.external_id}</code></span>
                  </td>
                  <td data-label=${t("exports.amount")} class="num">${money(item.amount)}</td>
                  <td data-label=${t("exports.status")}>
                    <${ItemStatusBadge} item=${item} />
                    ${item.waiting && html`<p class="sub waiting">${item.waiting.message || item.waiting.code}</p>`}
                    <${Failure} failure=${item.failure} />
                  </td>
                  <td data-label=${t("exports.dinero")}><${DineroReference} item=${item} /></td>
                  <td class="actions">
                    <${RetryButton} item=${item} api=${api} onDone=${replace} canEdit=${canEdit} />
                  </td>
                </tr>`,
              )}
            </tbody>
          </table></div>
          ${cursor &&
          html`<div class="row center"><button type="button" class="button" onClick=${more} disabled=${loadingMore}>
            ${t("exports.more")}</button></div>`}`}`;
}

/** What happened to the item, in order, from the times the API gives. */
function timeline(t, item) {
  const expense = isExpense(item.type);
  const steps = [{ key: "received", label: t("timeline.received"), at: item.created_at, done: true }];
  const exported = Boolean(item.exported_at) || ["awaiting_approval", "booked"].includes(item.status);
  if (item.status === "failed") {
    steps.push({ key: "exporting", label: t("timeline.exporting"), done: true,
      note: item.attempts > 0 ? t("timeline.attempts", { n: item.attempts }) : null });
    steps.push({ key: "failed", label: t("timeline.failed"), at: item.updated_at, done: true, bad: true });
    steps.push({ key: "retry", label: t("timeline.retryHint"), done: false });
    return steps;
  }
  steps.push({
    key: "exporting",
    label: t("timeline.exporting"),
    done: exported || item.status === "exporting",
    current: item.status === "exporting" || item.status === "queued",
    note: item.waiting ? item.waiting.message || item.waiting.code : null,
  });
  if (expense) {
    steps.push({ key: "draft", label: t("timeline.draft"), at: item.exported_at, done: exported,
      current: item.status === "awaiting_approval" });
    if (item.status === "deleted_in_dinero") {
      steps.push({ key: "deleted", label: t("timeline.deleted"), at: item.updated_at, done: true, bad: true });
    } else {
      steps.push({ key: "approved", label: t("timeline.approved"), at: item.booked_at, done: item.status === "booked" });
    }
  } else {
    steps.push({ key: "booked", label: t("timeline.ledgerBooked"), at: item.booked_at, done: item.status === "booked",
      current: exported && item.status !== "booked" });
  }
  return steps;
}

export function ItemPage({ api, itemId, canEdit }) {
  const { t, when, day, money } = useI18n();
  const [item, setItem] = useState(null);
  const [error, setError] = useState(null);

  const load = useLoad(async () => {
    setItem(await api.get(`/export-items/${encodeURIComponent(itemId)}`));
  }, setError, [api, itemId]);
  usePolling(
    load,
    !item || SETTLED.has(item.status) ? null : IN_MOTION.has(item.status) ? FAST_POLL_MS : SLOW_POLL_MS,
  );

  const back = html`<a href="#/exports" class="back">← ${t("item.back")}</a>`;
  if (!item) return html`${back}<${PageHeader} title=${t("item.title")} />${error ? html`<${ErrorNotice} error=${error} />` : html`<${Loading} />`}`;

  const steps = timeline(t, item);
  return html`
    ${back}
    <${PageHeader} title=${item.description || item.external_id}
      intro=${`${t(`type.${item.type}`)} · ${money(item.amount)} · ${day(item.date)}`}>
      <${ItemStatusBadge} item=${item} />
    <//>
    <${ErrorNotice} error=${error} />
    ${item.failure &&
    html`<${Notice} tone="danger" title=${t("item.failedTitle")}>
      <${Failure} failure=${item.failure} />
      <${RetryButton} item=${item} api=${api} onDone=${setItem} canEdit=${canEdit} />
    <//>`}
    ${item.status === "deleted_in_dinero" &&
    html`<${Notice} tone="danger" title=${t("item.deletedTitle")}>
      <p>${t("item.deletedText")}</p>
      <${RetryButton} item=${item} api=${api} onDone=${setItem} canEdit=${canEdit} />
    <//>`}
    ${item.waiting && html`<${Notice} tone="warning" title=${t("item.waitingTitle")}><p>${item.waiting.message || item.waiting.code}</p><//>`}
    <div class="grid-2">
      <${Card} title=${t("item.timeline")}>
        <ol class="timeline">
          ${steps.map(
            (step) => html`<li key=${step.key} data-step=${step.key}
              class=${["tl", step.done ? "done" : "", step.current ? "current" : "", step.bad ? "bad" : ""].join(" ")}>
              <span class="tl-dot" aria-hidden="true"></span>
              <span class="tl-label">${step.label}</span>
              ${step.at && html`<span class="tl-when">${when(step.at)}</span>`}
              ${step.note && html`<span class="tl-note">${step.note}</span>`}
            </li>`,
          )}
        </ol>
      <//>
      <${Card} title=${t("item.inDinero")}>
        <${DineroReference} item=${item} full=${true} />
      <//>
    </div>
    ${item.edited_in_dinero &&
    html`<${Card} title=${t("item.edited", { when: when(item.edited_in_dinero.detected_at) })}>
      <div class="table-wrap"><table class="table">
        <thead><tr><th scope="col">${t("item.field")}</th><th scope="col">${t("item.sentValue")}</th><th scope="col">${t("item.nowValue")}</th></tr></thead>
        <tbody>${item.edited_in_dinero.changes.map(
          (c, i) => html`<tr key=${i}><td><code>${c.field}</code></td><td>${String(c.sent ?? "—")}</td><td>${String(c.now ?? "—")}</td></tr>`,
        )}</tbody>
      </table></div>
    <//>`}
    ${item.late_receipt &&
    html`<${Notice} tone=${item.late_receipt.status === "not_attached" ? "warning" : "info"} title=${t(`item.late.${item.late_receipt.status}`)}>
      ${item.late_receipt.message && html`<p>${item.late_receipt.message}</p>`}
    <//>`}
    <${Card} title=${t("item.sent")}>
      <${Facts} rows=${[
        [t("item.externalId"), html`<code>${item.external_id}</code>`],
        [t("exports.date"), day(item.date)],
        item.posting_date && item.posting_date !== item.date &&
          [t("item.postingDate"), day(item.posting_date)],
        [t("exports.amount"), money(item.amount)],
        item.settled_amount && [t("item.settled"), money(item.settled_amount)],
        item.employee && [t("item.employee"), item.employee.name || item.employee.id || "—"],
        [t("item.receipts"), item.receipts.length
          ? item.receipts.map((r) => r.filename || r.content_type || r.source).join(", ")
          : t("item.noReceipt")],
        [t("item.attempts"), String(item.attempts)],
        item.next_attempt_at && [t("item.nextAttempt"), when(item.next_attempt_at)],
      ]} />
      ${item.lines.length > 0 &&
      html`<div class="table-wrap"><table class="table">
        <thead><tr>
          <th scope="col">${t("item.line.account")}</th>
          <th scope="col">${t("item.line.tax")}</th>
          <th scope="col" class="num">${t("exports.amount")}</th>
          <th scope="col" class="num">${t("item.line.dkk")}</th>
          <th scope="col">${t("item.line.description")}</th>
        </tr></thead>
        <tbody>${item.lines.map(
          (line, i) => html`<tr key=${i}>
            <td>${line.account_number ?? "—"}</td>
            <td>${line.tax_code || "—"}</td>
            <td class="num">${money({ value: line.amount, currency: item.amount.currency })}</td>
            <td class="num">${money({ value: line.dkk_amount, currency: "DKK" })}</td>
            <td>${line.description || ""}</td>
          </tr>`,
        )}</tbody>
      </table></div>`}
    <//>`;
}
