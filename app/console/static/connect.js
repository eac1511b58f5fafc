// Connect: the Firma ID, OAuth (Dinero's approval page, "Godkend") or an API key; the
// connection's state and problems in plain words; reconnect and disconnect.
import { useState } from "./vendor/hooks.mjs";
import {
  Badge,
  Card,
  ErrorNotice,
  Facts,
  Loading,
  Notice,
  PageHeader,
  html,
  safeHttpUrl,
  useI18n,
  useLoad,
  usePolling,
} from "./ui.js";

const STATUS_TONE = {
  not_connected: "neutral",
  pending: "warning",
  connected: "success",
  reauth_required: "danger",
};

export function ConnectionBadge({ status }) {
  const { t } = useI18n();
  return html`<${Badge} tone=${STATUS_TONE[status] || "neutral"} data-connection=${status}>
    ${t(`connection.${status}`)}
  <//>`;
}

export function ConnectPage({ api, canEdit, outcome, clearOutcome }) {
  const { t, when } = useI18n();
  const [conn, setConn] = useState(null);
  const [loadError, setLoadError] = useState(null);
  const [error, setError] = useState(null);
  const [orgId, setOrgId] = useState("");
  const [method, setMethod] = useState("oauth");
  const [apiKey, setApiKey] = useState("");
  const [busy, setBusy] = useState(false);
  const [switchProblem, setSwitchProblem] = useState(null);
  const [confirmingDisconnect, setConfirmingDisconnect] = useState(false);
  const [notice, setNotice] = useState(null);
  const [formOpen, setFormOpen] = useState(false);

  const load = useLoad(async () => {
    const answer = await api.get("/dinero/connection");
    setConn(answer);
    if (answer.organization_id) setOrgId((current) => current || String(answer.organization_id));
  }, setLoadError, [api]);
  usePolling(load, conn && conn.status === "pending" ? 3000 : null);

  async function connect(confirmSwitch) {
    setBusy(true);
    setError(null);
    setNotice(null);
    setSwitchProblem(null);
    clearOutcome();
    const body = { organization_id: Number(orgId), method, confirm_switch: Boolean(confirmSwitch) };
    if (method === "api_key") body.api_key = apiKey.trim();
    try {
      const answer = await api.put("/dinero/connection", body);
      const approval = answer.status === "pending" ? safeHttpUrl(answer.authorization_url) : null;
      if (approval) {
        // Dinero's approval page; the OAuth callback sends the admin back here (FRONTEND_URL).
        window.location.assign(approval);
        return;
      }
      setConn(answer);
      setApiKey("");
      setNotice(t("connect.done", { name: answer.organization_name || answer.organization_id }));
    } catch (err) {
      if (err.code === "organization_switch_requires_confirmation") setSwitchProblem(err);
      else setError(err);
    } finally {
      setBusy(false);
    }
  }

  async function disconnect() {
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      await api.del("/dinero/connection");
      setConfirmingDisconnect(false);
      setNotice(t("connect.disconnected"));
      await load();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  function submit(event) {
    event.preventDefault();
    connect(false);
  }

  if (loadError) return html`<${PageHeader} title=${t("connect.title")} /><${ErrorNotice} error=${loadError} />`;
  if (!conn) return html`<${PageHeader} title=${t("connect.title")} /><${Loading} />`;

  const connected = conn.status === "connected" || conn.status === "reauth_required";
  const attempt = conn.last_attempt;
  const outcomeProblem = outcome && !outcome.connected ? conn.problem || attempt?.problem : null;

  return html`
    <${PageHeader} title=${t("connect.title")} intro=${t("connect.intro")} />
    ${outcome && outcome.connected && conn.status === "connected" &&
    html`<${Notice} tone="success" title=${t("connect.backConnected", { name: conn.organization_name || "" })}>
      <p>${t("connect.syncStarted")} <a href="#/setup">${t("connect.toSetup")}</a></p>
    <//>`}
    ${outcome && !outcome.connected &&
    html`<${Notice} tone="danger" title=${t("connect.backRefused")}>
      <p>${outcomeProblem || t("connect.refusedUnknown")}</p>
      ${attempt?.dinero_message && html`<p class="dinero-says"><strong>${t("common.dineroSays")}</strong> ${attempt.dinero_message}</p>`}
      ${outcome.code && html`<p class="code">${t("common.code")}: <code>${outcome.code}</code></p>`}
    <//>`}
    ${notice && html`<${Notice} tone="success">${notice}<//>`}

    <div class="grid-2">
      <${Card} title=${t("connect.stateTitle")}>
        <div class="state-line"><${ConnectionBadge} status=${conn.status} /></div>
        <${Facts} rows=${[
          [t("connect.organization"), conn.organization_name
            ? html`<strong>${conn.organization_name}</strong> <span class="muted">(${t("connect.firmaId")} ${conn.organization_id})</span>`
            : conn.organization_id ? `${t("connect.firmaId")} ${conn.organization_id}` : "—"],
          [t("connect.method"), conn.method ? t(`connect.method.${conn.method}`) : "—"],
          [t("connect.connectedAt"), when(conn.connected_at)],
          [t("connect.lastSync"), when(conn.last_synced_at)],
        ]} />
        ${conn.status === "pending" && html`<${Notice} tone="warning">${t("connect.pendingHint")}<//>`}
        ${conn.problem && !outcomeProblem &&
        html`<${Notice} tone=${conn.status === "connected" ? "warning" : "danger"} title=${t("connect.problem")}>
          <p>${conn.problem}</p>
          ${conn.problem_code && html`<p class="code">${t("common.code")}: <code>${conn.problem_code}</code></p>`}
        <//>`}
        ${attempt && conn.status === "connected" &&
        html`<${Notice} tone="warning" title=${t("connect.lastAttempt", { when: when(attempt.failed_at) })}>
          <p>${attempt.problem}</p>
          ${attempt.dinero_message && html`<p class="dinero-says"><strong>${t("common.dineroSays")}</strong> ${attempt.dinero_message}</p>`}
        <//>`}
        ${canEdit && connected &&
        html`<div class="danger-zone">
          ${confirmingDisconnect
            ? html`<div class="confirm" role="alertdialog" aria-labelledby="disconnect-q">
                <p id="disconnect-q">${t("connect.disconnectQuestion")}</p>
                <div class="row">
                  <button type="button" class="button button-danger" onClick=${disconnect} disabled=${busy}>
                    ${t("connect.disconnectConfirm")}</button>
                  <button type="button" class="button" onClick=${() => setConfirmingDisconnect(false)}>
                    ${t("common.cancel")}</button>
                </div>
              </div>`
            : html`<button type="button" class="button button-danger-quiet" onClick=${() => setConfirmingDisconnect(true)}>
                ${t("connect.disconnect")}</button>`}
        </div>`}
      <//>

      <${Card} title=${connected ? t("connect.reconnectTitle") : t("connect.formTitle")}>
        ${!canEdit
          ? html`<p class="muted">${t("role.adminOnly")}</p>`
          : conn.status === "connected" && !formOpen
          ? html`<p class="muted">${t("connect.reconnectIntro")}</p>
              <div class="row"><button type="button" class="button" onClick=${() => setFormOpen(true)}>
                ${t("connect.reconnectOpen")}</button></div>`
          : html`<form class="stack" onSubmit=${submit}>
          <div class="field">
            <label for="firma-id">${t("connect.firmaId")}</label>
            <input id="firma-id" name="organization_id" inputmode="numeric" pattern="[0-9]{1,15}" required
              autocomplete="off" value=${orgId} onInput=${(e) => setOrgId(e.currentTarget.value.trim())}
              aria-describedby="firma-id-hint" />
            <p class="hint" id="firma-id-hint">${t("connect.firmaIdHint")}</p>
          </div>
          <fieldset class="field">
            <legend>${t("connect.how")}</legend>
            <label class="choice">
              <input type="radio" name="method" value="oauth" checked=${method === "oauth"}
                onChange=${() => setMethod("oauth")} />
              <span><strong>${t("connect.oauth")}</strong><br /><span class="hint">${t("connect.oauthHint")}</span></span>
            </label>
            <label class="choice">
              <input type="radio" name="method" value="api_key" checked=${method === "api_key"}
                onChange=${() => setMethod("api_key")} />
              <span><strong>${t("connect.apiKey")}</strong><br /><span class="hint">${t("connect.apiKeyHint")}</span></span>
            </label>
          </fieldset>
          ${method === "api_key" &&
          html`<div class="field">
            <label for="api-key">${t("connect.apiKeyLabel")}</label>
            <input id="api-key" type="password" autocomplete="off" required value=${apiKey}
              onInput=${(e) => setApiKey(e.currentTarget.value)} />
          </div>`}
          ${switchProblem &&
          html`<${Notice} tone="warning" title=${t("connect.switchTitle")}>
            <p>${switchProblem.problem.detail}</p>
            <div class="row">
              <button type="button" class="button button-danger" onClick=${() => connect(true)} disabled=${busy}>
                ${t("connect.switchConfirm", { org: orgId })}</button>
              <button type="button" class="button" onClick=${() => setSwitchProblem(null)}>${t("common.cancel")}</button>
            </div>
          <//>`}
          <${ErrorNotice} error=${error} title=${t("connect.refusedTitle")} />
          <div class="row">
            <button type="submit" class="button button-primary" disabled=${busy}>
              ${method === "oauth" ? t("connect.submitOauth") : t("connect.submitApiKey")}</button>
          </div>
        </form>`}
      <//>
    </div>`;
}
