// Data sources: Dinero's data by type for dashboards. List, create (entries need one of the
// organization's accounting years: when Dinero has another, its years are offered), refresh,
// and download a type's records as CSV.
import { useState } from "./vendor/hooks.mjs";
import { Badge, Card, ErrorNotice, Loading, Notice, PageHeader, html, useI18n, useLoad, usePolling } from "./ui.js";

const DATA_TYPES = [
  "contacts",
  "deposit_accounts",
  "entries",
  "entry_accounts",
  "invoices",
  "products",
  "sales",
  "trade_offers",
];
const FREQUENCIES = [
  { value: "", label: "ds.freq.manual" },
  { value: "15", label: "ds.freq.15" },
  { value: "60", label: "ds.freq.60" },
  { value: "360", label: "ds.freq.360" },
  { value: "1440", label: "ds.freq.1440" },
];
const STATUS_TONE = { importing: "info", refreshing: "info", ready: "success", failed: "danger" };
const thisYear = new Date().getFullYear();

function yearLabel(year) {
  const start = year.start.slice(0, 4);
  const end = year.end.slice(0, 4);
  return `${year.name || (start === end ? start : `${start}/${end}`)} (${year.start} – ${year.end})`;
}

function CreateForm({ api, onCreated }) {
  const { t } = useI18n();
  const [title, setTitle] = useState("");
  const [types, setTypes] = useState(["entries"]);
  const [start, setStart] = useState(`${thisYear}-01-01`);
  const [end, setEnd] = useState(`${thisYear}-12-31`);
  const [frequency, setFrequency] = useState("60");
  const [validYears, setValidYears] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const entries = types.includes("entries");

  function toggle(type, on) {
    setTypes((current) => (on ? [...current, type] : current.filter((x) => x !== type)));
  }

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const body = {
      title: title.trim() || null,
      data_types: DATA_TYPES.filter((type) => types.includes(type)),
      refresh_minutes: frequency === "" ? null : Number(frequency),
    };
    if (entries) body.accounting_year = { start, end };
    try {
      const created = await api.post("/data-sources", body);
      setTitle("");
      setValidYears(null);
      onCreated(created);
    } catch (err) {
      if (err.code === "accounting_year_unknown" && Array.isArray(err.problem.valid_years)) {
        setValidYears(err.problem.valid_years);
      }
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  function pickYear(year) {
    setStart(year.start);
    setEnd(year.end);
    setError(null);
    if (!title.trim()) setTitle(t("ds.defaultTitle", { year: year.name || year.start.slice(0, 4) }));
  }

  return html`<form class="stack" onSubmit=${submit} aria-labelledby="ds-new">
    <h2 class="card-title" id="ds-new">${t("ds.newTitle")}</h2>
    <div class="field">
      <label for="ds-title">${t("ds.titleLabel")}</label>
      <input id="ds-title" value=${title} maxlength="200" placeholder=${t("ds.titlePlaceholder")}
        onInput=${(e) => setTitle(e.currentTarget.value)} />
    </div>
    <fieldset class="field">
      <legend>${t("ds.types")}</legend>
      <div class="checks">
        ${DATA_TYPES.map(
          (type) => html`<label class="check" key=${type}>
            <input type="checkbox" checked=${types.includes(type)} onChange=${(e) => toggle(type, e.currentTarget.checked)} />
            ${t(`ds.type.${type}`)}
          </label>`,
        )}
      </div>
    </fieldset>
    ${entries &&
    html`<fieldset class="field">
      <legend>${t("ds.year")}</legend>
      <p class="hint">${t("ds.yearHint")}</p>
      <div class="row">
        <div class="field"><label for="ds-start">${t("ds.start")}</label>
          <input id="ds-start" type="date" required value=${start} onInput=${(e) => setStart(e.currentTarget.value)} /></div>
        <div class="field"><label for="ds-end">${t("ds.end")}</label>
          <input id="ds-end" type="date" required value=${end} onInput=${(e) => setEnd(e.currentTarget.value)} /></div>
      </div>
      ${validYears &&
      html`<div class="valid-years" role="group" aria-labelledby="valid-years-title">
        <p id="valid-years-title"><strong>${t("ds.validYears")}</strong></p>
        ${validYears.length === 0
          ? html`<p class="muted">${t("ds.noYears")}</p>`
          : html`<div class="row wrap">${validYears.map(
              (year) => html`<button type="button" key=${year.start} class=${
                year.start === start && year.end === end ? "button button-small on" : "button button-small"}
                aria-pressed=${year.start === start && year.end === end ? "true" : "false"}
                onClick=${() => pickYear(year)}>${yearLabel(year)}</button>`,
            )}</div>`}
      </div>`}
    </fieldset>`}
    <div class="field">
      <label for="ds-frequency">${t("ds.frequency")}</label>
      <select id="ds-frequency" value=${frequency} onChange=${(e) => setFrequency(e.currentTarget.value)}>
        ${FREQUENCIES.map((f) => html`<option key=${f.value} value=${f.value}>${t(f.label)}</option>`)}
      </select>
    </div>
    <${ErrorNotice} error=${error} title=${t("ds.refused")} />
    <div class="row">
      <button type="submit" class="button button-primary" disabled=${busy || types.length === 0}>${t("ds.create")}</button>
    </div>
  </form>`;
}

function SourceCard({ source, api, canEdit, onChanged }) {
  const { t, when, number } = useI18n();
  const [csvType, setCsvType] = useState(source.data_types[0]);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [queued, setQueued] = useState(null);

  async function refresh() {
    setBusy(true);
    setError(null);
    try {
      const answer = await api.post(`/data-sources/${source.id}/refresh`);
      setQueued(answer.status);
      onChanged(answer.data_source);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  async function download() {
    setBusy(true);
    setError(null);
    try {
      const response = await api.fetchRaw(`/data-sources/${source.id}/records`, { data_type: csvType }, "text/csv");
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const link = document.createElement("a");
      link.href = url;
      link.download = `${source.title.replace(/[^\p{L}\p{N}._-]+/gu, "-")}-${csvType}.csv`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return html`<${Card} className="source" title=${source.title}
    actions=${html`<${Badge} tone=${STATUS_TONE[source.status] || "neutral"} data-source-status=${source.status}>
      ${t(`ds.status.${source.status}`)}<//>`}>
    <p class="muted">
      ${source.data_types.map((type) => t(`ds.type.${type}`)).join(", ")}
      ${source.accounting_year && ` · ${t("ds.yearShort")} ${source.accounting_year.start} – ${source.accounting_year.end}`}
    </p>
    <ul class="progress-list">
      ${source.data_types.map((type) => {
        const p = source.progress[type];
        return html`<li key=${type}><span>${t(`ds.type.${type}`)}</span>
          <span class="muted">${p ? `${t(`ds.state.${p.state}`)} · ${t("ds.records", { n: number(p.records) })}` : ""}</span></li>`;
      })}
    </ul>
    <p class="muted small">${[
      `${t("ds.lastRefreshed")}: ${when(source.last_refreshed_at)}`,
      source.refresh_minutes ? `${t("ds.nextRefresh")}: ${when(source.next_refresh_at)}` : t("ds.freq.manual"),
    ].join(" · ")}</p>
    ${source.error &&
    html`<${Notice} tone=${source.retry_at ? "warning" : "danger"}>
      <p>${source.error.message}</p>
      ${source.error.dinero_message && html`<p class="dinero-says"><strong>${t("common.dineroSays")}</strong> ${source.error.dinero_message}</p>`}
      ${source.retry_at && html`<p class="muted">${t("ds.retryAt", { when: when(source.retry_at) })}</p>`}
    <//>`}
    ${queued && html`<p class="ok" role="status">${t(`ds.refresh.${queued}`)}</p>`}
    <${ErrorNotice} error=${error} />
    <div class="row wrap">
      ${canEdit && html`<button type="button" class="button" onClick=${refresh} disabled=${busy}
        aria-label=${t("ds.refreshFor", { title: source.title })}>${t("ds.refresh")}</button>`}
      <label class="sr-only" for=${`csv-${source.id}`}>${t("ds.csvType")}</label>
      <select id=${`csv-${source.id}`} value=${csvType} onChange=${(e) => setCsvType(e.currentTarget.value)}>
        ${source.data_types.map((type) => html`<option key=${type} value=${type}>${t(`ds.type.${type}`)}</option>`)}
      </select>
      <button type="button" class="button" onClick=${download} disabled=${busy}
        aria-label=${t("ds.csvFor", { title: source.title })}>${t("ds.csv")}</button>
    </div>
  <//>`;
}

export function DataSourcesPage({ api, canEdit }) {
  const { t } = useI18n();
  const [sources, setSources] = useState(null);
  const [error, setError] = useState(null);
  const [created, setCreated] = useState(null);

  const load = useLoad(async () => {
    const answer = await api.get("/data-sources");
    setSources(answer.items);
  }, setError, [api]);
  const busy = sources && sources.some((s) => s.status === "importing" || s.status === "refreshing");
  usePolling(load, busy ? 1000 : 10000);

  function changed(source) {
    setSources((current) => {
      const rest = (current || []).filter((s) => s.id !== source.id);
      return current && current.some((s) => s.id === source.id)
        ? current.map((s) => (s.id === source.id ? source : s))
        : [source, ...rest];
    });
  }

  return html`
    <${PageHeader} title=${t("ds.title")} intro=${t("ds.intro")} />
    <${ErrorNotice} error=${error} />
    ${created && html`<${Notice} tone="success">${t("ds.created", { title: created.title })}<//>`}
    <div class="grid-2 grid-wide-left">
      <div class="stack">
        ${sources === null
          ? html`<${Loading} />`
          : sources.length === 0
            ? html`<p class="empty">${t("ds.none")}</p>`
            : sources.map((s) => html`<${SourceCard} key=${s.id} source=${s} api=${api} canEdit=${canEdit} onChanged=${changed} />`)}
      </div>
      ${canEdit &&
      html`<section class="card">
        <${CreateForm} api=${api} onCreated=${(source) => {
          setCreated(source);
          changed(source);
        }} />
      </section>`}
    </div>`;
}
