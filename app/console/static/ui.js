// Shared pieces: the html tag, translation context, formatting, small components, polling.
import { createContext, h } from "./vendor/preact.mjs";
import { useCallback, useContext, useEffect, useRef, useState } from "./vendor/hooks.mjs";
import htm from "./vendor/htm.mjs";
import { translator } from "./i18n.js";

export const html = htm.bind(h);

const LOCALES = { en: "en-GB", da: "da-DK" };

export function makeI18n(lang) {
  const locale = LOCALES[lang] || LOCALES.en;
  const t = translator(lang);
  const dateTime = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" });
  const dateOnly = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeZone: "UTC" });
  const timeOnly = new Intl.DateTimeFormat(locale, { timeStyle: "medium" });
  return {
    lang,
    locale,
    t,
    when: (iso) => (iso ? dateTime.format(new Date(iso)) : "—"),
    day: (iso) => (iso ? dateOnly.format(new Date(`${iso.slice(0, 10)}T00:00:00Z`)) : "—"),
    clock: (date) => timeOnly.format(date),
    money: (money) => formatMoney(money, locale),
    number: (n) => new Intl.NumberFormat(locale).format(n),
  };
}

/** Minor units (øre, cents) as the currency's own decimals, never through a float sum. */
export function formatMoney(money, locale) {
  if (!money || typeof money.value !== "number") return "—";
  const currency = money.currency || "DKK";
  let format;
  try {
    format = new Intl.NumberFormat(locale, { style: "currency", currency });
  } catch {
    format = new Intl.NumberFormat(locale, { style: "currency", currency: "DKK" });
  }
  const digits = format.resolvedOptions().maximumFractionDigits;
  return format.format(money.value / 10 ** digits);
}

export const I18n = createContext(makeI18n("en"));
export const useI18n = () => useContext(I18n);

/** Run `fetch` (which stores what it read) when the page opens and whenever `deps` change; a
 * failure goes to `setError`, a success clears it. Returns the loader, to run it again. */
export function useLoad(fetch, setError, deps) {
  const load = useCallback(async () => {
    try {
      await fetch();
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, deps);
  useEffect(() => {
    load();
  }, [load]);
  return load;
}

/** One action at a time (a form's submit): `busy` while `run(fn)` awaits `fn`, whose failure is
 * kept in `error` (cleared when the next run starts) for an ErrorNotice. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  async function run(fn) {
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return { busy, error, run };
}

/** Call `fn` every `ms` (null: not at all) while the page is visible; the latest fn is used. */
export function usePolling(fn, ms) {
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(() => {
    if (!ms) return undefined;
    const id = setInterval(() => {
      if (document.visibilityState !== "hidden") latest.current();
    }, ms);
    return () => clearInterval(id);
  }, [ms]);
}

export function Badge({ tone = "neutral", children, ...rest }) {
  return html`<span class=${`badge badge-${tone}`} ...${rest}>${children}</span>`;
}

export function Notice({ tone = "info", title, children, role }) {
  const live = role || (tone === "danger" || tone === "warning" ? "alert" : "status");
  return html`<div class=${`notice notice-${tone}`} role=${live}>
    ${title && html`<p class="notice-title">${title}</p>`}
    ${children}
  </div>`;
}

/** An API error in plain words: the service's sentence, Dinero's own text, the fields. */
export function ErrorNotice({ error, title }) {
  const { t } = useI18n();
  if (!error) return null;
  const problem = error.problem || {};
  const detail =
    error.code === "network" ? t("error.network") : problem.detail || error.message || "";
  // Field messages that only repeat the sentence above are not shown twice.
  const fields = problem.errors
    ? Object.entries(problem.errors).filter(([, message]) => message !== detail)
    : [];
  return html`<${Notice} tone="danger" title=${title || t("error.title")}>
    <p>${detail}</p>
    ${problem.dinero_message &&
    html`<p class="dinero-says"><strong>${t("common.dineroSays")}</strong> ${problem.dinero_message}</p>`}
    ${fields.length > 0 &&
    html`<ul class="field-errors">
      ${fields.map(([field, message]) => html`<li key=${field}><code>${field}</code>: ${message}</li>`)}
    </ul>`}
    ${error.code && error.code !== "network" && html`<p class="code">${t("common.code")}: <code>${error.code}</code></p>`}
  <//>`;
}

export function Spinner({ label }) {
  return html`<span class="spinner" role="status" aria-label=${label}></span>`;
}

export function Loading() {
  const { t } = useI18n();
  return html`<div class="loading"><${Spinner} label=${t("common.loading")} /> ${t("common.loading")}</div>`;
}

export function PageHeader({ title, intro, children }) {
  return html`<header class="page-header">
    <div>
      <h1 tabindex="-1">${title}</h1>
      ${intro && html`<p class="intro">${intro}</p>`}
    </div>
    ${children && html`<div class="page-actions">${children}</div>`}
  </header>`;
}

export function Card({ title, children, className = "", actions, headingLevel = 2 }) {
  const Heading = `h${headingLevel}`;
  return html`<section class=${`card ${className}`}>
    ${(title || actions) &&
    html`<div class="card-head">
      ${title && html`<${Heading} class="card-title">${title}<//>`}
      ${actions && html`<div class="card-actions">${actions}</div>`}
    </div>`}
    ${children}
  </section>`;
}

export function Facts({ rows }) {
  return html`<dl class="facts">
    ${rows
      .filter((row) => row)
      .map(([label, value]) => html`<div class="fact" key=${label}><dt>${label}</dt><dd>${value}</dd></div>`)}
  </dl>`;
}

/** Is this an http(s) URL (never javascript: or data:)? */
export function safeHttpUrl(value) {
  try {
    const url = new URL(value, window.location.origin);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

export const STATUS_TONE = {
  queued: "neutral",
  exporting: "info",
  awaiting_approval: "warning",
  booked: "success",
  failed: "danger",
  deleted_in_dinero: "danger",
};

export const ITEM_TYPES = ["card_expense", "out_of_pocket_expense", "reimbursement", "wallet_top_up"];
export const ITEM_STATUSES = [
  "queued",
  "exporting",
  "awaiting_approval",
  "booked",
  "failed",
  "deleted_in_dinero",
  "reversing",
  "reversed",
];
export const isExpense = (type) => type === "card_expense" || type === "out_of_pocket_expense";

/** The words for an item's status; "booked" says where (Godkend'ed draft or Kassekladde). */
export function statusWords(t, item) {
  if (item.status === "booked") {
    return isExpense(item.type) ? t("status.booked.voucher") : t("status.booked.ledger");
  }
  return t(`status.${item.status}`);
}

export function ItemStatusBadge({ item }) {
  const { t } = useI18n();
  return html`<${Badge} tone=${STATUS_TONE[item.status] || "neutral"} data-status=${item.status}>
    ${statusWords(t, item)}
  <//>`;
}
