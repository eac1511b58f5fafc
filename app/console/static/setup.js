// Setup: the four accounts from the synced deposit accounts ("Beholdning"), readiness per
// export type, the problems to fix, the lock date, and "sync now" with its progress.
import { useState } from "./vendor/hooks.mjs";
import {
  Badge,
  Card,
  ErrorNotice,
  ITEM_TYPES,
  Loading,
  Notice,
  PageHeader,
  html,
  useAction,
  useI18n,
  useLoad,
  usePolling,
} from "./ui.js";

const ACCOUNT_FIELDS = ["deposit_account", "out_of_pocket_account", "reimbursement_account", "top_up_account"];
const SYNC_STEPS = ["queued", "running", "succeeded"];

function formOf(settings) {
  const form = {};
  for (const field of ACCOUNT_FIELDS) form[field] = settings[field] == null ? "" : String(settings[field]);
  return form;
}

function SyncProgress({ sync }) {
  const { t, when, number } = useI18n();
  const active = sync.status === "queued" || sync.status === "running";
  const reached = SYNC_STEPS.indexOf(sync.status);
  return html`<div class="sync" data-sync=${sync.status}>
    <ol class="steps" aria-label=${t("setup.syncProgress")}>
      ${SYNC_STEPS.map(
        (step, index) => html`<li key=${step} class=${
          sync.status === "failed" && index === 2 ? "step failed"
            : index < reached || sync.status === "succeeded" ? "step done"
            : index === reached ? "step current" : "step"}>
          ${t(`setup.sync.${step}`)}</li>`,
      )}
    </ol>
    ${active && html`<div class="bar" role="progressbar" aria-label=${t("setup.syncProgress")}
      aria-valuetext=${t(`setup.sync.${sync.status}`)}><span></span></div>`}
    <p class="muted" role="status">
      ${sync.status === "never" && t("setup.sync.never")}
      ${sync.status === "succeeded" &&
      t("setup.sync.doneAt", { when: when(sync.succeeded_at), changes: number(sync.changes || 0) })}
      ${active && t("setup.sync.busy")}
    </p>
    ${sync.status === "failed" &&
    html`<${Notice} tone="danger" title=${t("setup.sync.failedTitle")}>
      <p>${sync.error_message || sync.error_code}</p>
      ${sync.succeeded_at && html`<p class="muted">${t("setup.sync.lastGood", { when: when(sync.succeeded_at) })}</p>`}
    <//>`}
  </div>`;
}

const USE_AS = { deposit_account: "deposit", out_of_pocket_account: "out_of_pocket",
  reimbursement_account: "reimbursement", top_up_account: "top_up" };

// Create a deposit account in Dinero (POST …/dinero/deposit-accounts), then show it chosen.
function CreateAccount({ api, onCreated }) {
  const { t } = useI18n();
  const [name, setName] = useState("");
  const [number, setNumber] = useState("");
  const [useAs, setUseAs] = useState("");
  const { busy, error, run } = useAction();
  const [done, setDone] = useState(null);

  async function create(event) {
    event.preventDefault();
    setDone(null);
    const body = { name };
    if (number !== "") body.number = Number(number);
    if (useAs !== "") body.use_as = USE_AS[useAs];
    await run(async () => {
      const answer = await api.post("/dinero/deposit-accounts", body);
      setDone(answer);
      setName("");
      setNumber("");
      await onCreated();
    });
  }

  return html`<${Card} title=${t("setup.createTitle")}>
    <p class="hint">${t("setup.createIntro")}</p>
    <form class="stack" onSubmit=${create}>
      <div class="field">
        <label for="new-name">${t("setup.createName")}</label>
        <input id="new-name" required maxlength="255" value=${name}
          onInput=${(e) => setName(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="new-number">${t("setup.createNumber")}</label>
        <input id="new-number" type="number" min="1" value=${number}
          onInput=${(e) => setNumber(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="new-use">${t("setup.createUseAs")}</label>
        <select id="new-use" value=${useAs} onChange=${(e) => setUseAs(e.currentTarget.value)}>
          <option value="">${t("setup.createNoUse")}</option>
          ${ACCOUNT_FIELDS.map((field) => html`<option key=${field} value=${field}>${t(`setup.${field}`)}</option>`)}
        </select>
      </div>
      <${ErrorNotice} error=${error} title=${t("setup.createRefused")} />
      ${done && html`<${Notice} tone="success">${t("setup.created", { number: String(done.account_number), name: done.name })}<//>`}
      <div class="row"><button type="submit" class="button" disabled=${busy || name.trim() === ""}>
        ${t("setup.create")}</button></div>
    </form>
  <//>`;
}

// The lock date (books_closed_through) and what happens to items dated on or before it (held, or
// posted on the first open day). Saved with the accounts as they are stored; the years Dinero
// refused as closed are listed below it.
function ClosedPeriod({ api, settings, canEdit, onSaved }) {
  const { t, when } = useI18n();
  const [value, setValue] = useState(settings.books_closed_through || "");
  const [policy, setPolicy] = useState(settings.closed_period_policy || "hold");
  const { busy, error, run } = useAction();
  const [saved, setSaved] = useState(false);

  async function save(event) {
    event.preventDefault();
    setSaved(false);
    const body = { books_closed_through: value === "" ? null : value, closed_period_policy: policy };
    for (const field of ACCOUNT_FIELDS) body[field] = settings[field];
    await run(async () => {
      onSaved(await api.put("/dinero/settings", body));
      setSaved(true);
    });
  }

  const refused = settings.closed_accounting_years || [];
  return html`<${Card} title=${t("setup.closedTitle")}>
    <form class="stack" onSubmit=${save}>
      <div class="field">
        <label for="books-closed-through">${t("setup.closedThrough")}</label>
        <input id="books-closed-through" type="date" value=${value} disabled=${!canEdit}
          aria-describedby="books-closed-through-hint"
          onInput=${(e) => { setValue(e.currentTarget.value); setSaved(false); }} />
        <p class="hint" id="books-closed-through-hint">${t("setup.closedThrough.hint")}</p>
      </div>
      <div class="field">
        <label for="closed-period-policy">${t("setup.closedPolicy")}</label>
        <select id="closed-period-policy" value=${policy} disabled=${!canEdit}
          onChange=${(e) => { setPolicy(e.currentTarget.value); setSaved(false); }}>
          <option value="hold">${t("setup.closedPolicy.hold")}</option>
          <option value="first_open_day">${t("setup.closedPolicy.first_open_day")}</option>
        </select>
      </div>
      <${ErrorNotice} error=${error} title=${t("setup.closedRefused")} />
      ${saved && html`<${Notice} tone="success">${value ? t("setup.closedSaved", { day: value }) : t("setup.closedCleared")}<//>`}
      ${canEdit && html`<div class="row"><button type="submit" class="button" disabled=${busy}>
        ${t("setup.closedSave")}</button></div>`}
    </form>
    ${refused.length > 0 && html`<${Notice} tone="warning" title=${t("setup.closedYearsTitle")}>
      <ul>${refused.map((year) => html`<li key=${year.first_day} data-closed-year=${year.first_day}>
        ${t("setup.closedYear", { first: year.first_day, last: year.last_day, when: when(year.refused_at) })}
        ${year.dinero_message && html`<span class="muted"> (${year.dinero_message})</span>`}</li>`)}</ul>
      <p class="hint">${t("setup.closedYears.hint")}</p>
    <//>`}
  <//>`;
}

export function SetupPage({ api, canEdit }) {
  const { t } = useI18n();
  const [conn, setConn] = useState(null);
  const [settings, setSettings] = useState(null);
  const [accounts, setAccounts] = useState([]);
  const [sync, setSync] = useState(null);
  const [form, setForm] = useState(null);
  const [error, setError] = useState(null);
  const [saveError, setSaveError] = useState(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);

  const load = useLoad(async () => {
    const [connection, current, deposit, syncState] = await Promise.all([
      api.get("/dinero/connection"),
      api.get("/dinero/settings"),
      api.get("/deposit-accounts"),
      api.get("/dinero/sync"),
    ]);
    setConn(connection);
    setSettings(current);
    setAccounts(deposit);
    setSync(syncState);
    setForm((kept) => kept || formOf(current));
  }, setError, [api]);

  const syncing = sync && (sync.status === "queued" || sync.status === "running");
  usePolling(async () => {
    try {
      const state = await api.get("/dinero/sync");
      setSync(state);
      if (state.status === "succeeded" || state.status === "failed") {
        const [current, deposit] = await Promise.all([api.get("/dinero/settings"), api.get("/deposit-accounts")]);
        setSettings(current);
        setAccounts(deposit);
      }
    } catch (err) {
      setError(err);
    }
  }, syncing ? 700 : null);

  async function syncNow() {
    setBusy(true);
    setError(null);
    try {
      setSync(await api.post("/dinero/sync"));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  async function save(event) {
    event.preventDefault();
    setBusy(true);
    setSaved(false);
    setSaveError(null);
    const body = {};
    for (const field of ACCOUNT_FIELDS) body[field] = form[field] === "" ? null : Number(form[field]);
    try {
      const answer = await api.put("/dinero/settings", body);
      setSettings(answer);
      setForm(formOf(answer));
      setSaved(true);
    } catch (err) {
      setSaveError(err);
    } finally {
      setBusy(false);
    }
  }

  if (!settings || !sync || !form || !conn) {
    return html`<${PageHeader} title=${t("setup.title")} />${error ? html`<${ErrorNotice} error=${error} />` : html`<${Loading} />`}`;
  }
  const connected = conn.status === "connected";

  return html`
    <${PageHeader} title=${t("setup.title")} intro=${t("setup.intro")} />
    ${!connected && html`<${Notice} tone="warning">${t("setup.notConnected")} <a href="#/connect">${t("nav.connect")}</a><//>`}
    <${ErrorNotice} error=${error} />
    <div class="grid-2">
      <${Card} title=${t("setup.accountsTitle")}>
        ${accounts.length === 0
          ? html`<p class="muted">${t("setup.noAccounts")}</p>`
          : html`<form class="stack" onSubmit=${save}>
          ${ACCOUNT_FIELDS.map(
            (field) => html`<div class="field" key=${field}>
              <label for=${`acc-${field}`}>${t(`setup.${field}`)}</label>
              <select id=${`acc-${field}`} value=${form[field]} disabled=${!canEdit}
                aria-describedby=${`acc-${field}-hint`}
                onChange=${(e) => {
                  const value = e.currentTarget.value;
                  setForm((current) => ({ ...current, [field]: value }));
                  setSaved(false);
                }}>
                <option value="">${field === "top_up_account" ? t("setup.sameAsReimbursement") : t("setup.notSet")}</option>
                ${accounts.map(
                  (account) => html`<option key=${account.account_number} value=${String(account.account_number)}>
                    ${account.account_number} · ${account.name}${account.is_default ? ` (${t("setup.dineroDefault")})` : ""}
                  </option>`,
                )}
                ${form[field] !== "" && !accounts.some((a) => String(a.account_number) === form[field]) &&
                html`<option value=${form[field]}>${form[field]} · ${t("setup.unusable")}</option>`}
              </select>
              <p class="hint" id=${`acc-${field}-hint`}>${t(`setup.${field}.hint`)}</p>
            </div>`,
          )}
          <${ErrorNotice} error=${saveError} title=${t("setup.saveRefused")} />
          ${saved && html`<${Notice} tone="success">${t("setup.saved")}<//>`}
          ${canEdit && html`<div class="row"><button type="submit" class="button button-primary" disabled=${busy}>
            ${t("setup.save")}</button></div>`}
        </form>`}
      <//>
      <div class="stack">
        <${Card} title=${t("setup.readinessTitle")}>
          <ul class="readiness">
            ${ITEM_TYPES.map((type) => {
              const ready = settings.exports[type];
              if (!ready) return null;
              return html`<li key=${type} data-type=${type} data-ready=${ready.ready ? "true" : "false"}>
                <span class="readiness-type">${t(`type.${type}`)}</span>
                ${ready.ready
                  ? html`<${Badge} tone="success">${t("setup.ready")}<//>`
                  : html`<${Badge} tone="warning">${t("setup.notReady")}<//>`}
                ${!ready.ready && ready.message && html`<p class="hint">${ready.message}</p>`}
              </li>`;
            })}
          </ul>
          ${settings.problems.length > 0 &&
          html`<${Notice} tone="warning" title=${t("setup.problemsTitle")}>
            <ul>${settings.problems.map((p, i) => html`<li key=${i}>${p.message}</li>`)}</ul>
          <//>`}
        <//>
        <${ClosedPeriod} api=${api} settings=${settings} canEdit=${canEdit}
          onSaved=${(answer) => { setSettings(answer); }} />
        ${canEdit && connected && html`<${CreateAccount} api=${api} onCreated=${async () => {
          const [current, deposit] = await Promise.all([api.get("/dinero/settings"), api.get("/deposit-accounts")]);
          setSettings(current);
          setAccounts(deposit);
          setForm(formOf(current));
        }} />`}
        <${Card} title=${t("setup.syncTitle")}
          actions=${canEdit && connected && html`<button type="button" class="button" onClick=${syncNow}
            disabled=${busy || syncing}>${t("setup.syncNow")}</button>`}>
          <p class="hint">${t("setup.syncIntro")}</p>
          <${SyncProgress} sync=${sync} />
        <//>
      </div>
    </div>`;
}
