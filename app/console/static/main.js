// The finance admin's console: sign-in, navigation and the pages. Only the public REST API.
import { render } from "./vendor/preact.mjs";
import { useCallback, useEffect, useMemo, useRef, useState } from "./vendor/hooks.mjs";
import { ApiError, claimsOf, createApi, forgetToken, mintDevToken, storeToken, storedToken } from "./api.js";
import { I18n, Notice, html, makeI18n, useI18n } from "./ui.js";
import { ConnectPage } from "./connect.js";
import { SetupPage } from "./setup.js";
import { CategoriesPage } from "./categories.js";
import { ExportsPage, ItemPage } from "./exports.js";
import { DataSourcesPage } from "./datasources.js";

const LANG_KEY = "dinero-console.lang";
const ENVIRONMENT =
  document.querySelector('meta[name="console-environment"]')?.getAttribute("content") || "production";

const PAGES = [
  { id: "connect", label: "nav.connect" },
  { id: "setup", label: "nav.setup" },
  { id: "categories", label: "nav.categories" },
  { id: "exports", label: "nav.exports" },
  { id: "data-sources", label: "nav.dataSources" },
];

function initialLang() {
  try {
    const kept = localStorage.getItem(LANG_KEY);
    if (kept === "da" || kept === "en") return kept;
  } catch {
    /* no storage: the browser's language decides */
  }
  return (navigator.language || "en").toLowerCase().startsWith("da") ? "da" : "en";
}

function parseRoute(hash) {
  const parts = (hash || "").replace(/^#\/?/, "").split("/").filter(Boolean);
  const page = PAGES.some((p) => p.id === parts[0]) ? parts[0] : "connect";
  return { page, id: page === "exports" && parts[1] ? decodeURIComponent(parts[1]) : null };
}

/** Take the token the expense app hands over in `#token=…`, then drop it from the address. */
function takeFragmentToken() {
  const hash = window.location.hash || "";
  if (!hash.startsWith("#token=")) return null;
  const token = new URLSearchParams(hash.slice(1)).get("token");
  window.history.replaceState(null, "", `${window.location.pathname}#/connect`);
  return token && token.trim() ? token.trim() : null;
}

/** `?dinero=connected|error&code=…` from the OAuth callback (FRONTEND_URL), read once. */
function takeOAuthOutcome() {
  const params = new URLSearchParams(window.location.search);
  const dinero = params.get("dinero");
  if (!dinero) return null;
  const code = params.get("code");
  window.history.replaceState(null, "", `${window.location.pathname}#/connect`);
  // The message in the address is not shown (anyone can write a link): the connection's own
  // record, read from the API, says why.
  return {
    connected: dinero === "connected",
    code: code && /^[a-z0-9_]{1,64}$/.test(code) ? code : null,
  };
}

function tokenProblem(claims) {
  if (!claims) return "signin.invalidToken";
  if (typeof claims.exp === "number" && claims.exp * 1000 < Date.now()) return "signin.expired";
  return null;
}

function SignIn({ onToken, message }) {
  const { t } = useI18n();
  const [pasted, setPasted] = useState("");
  const [error, setError] = useState(message ? t(message) : null);
  const [busy, setBusy] = useState(false);

  async function demo() {
    setBusy(true);
    setError(null);
    try {
      onToken(await mintDevToken());
    } catch (err) {
      setError(err instanceof ApiError && err.problem.detail ? err.problem.detail : t("error.network"));
    } finally {
      setBusy(false);
    }
  }

  function submit(event) {
    event.preventDefault();
    const token = pasted.trim().replace(/^bearer\s+/i, "");
    const problem = tokenProblem(claimsOf(token));
    if (problem) {
      setError(t(problem));
      return;
    }
    setPasted("");
    onToken(token);
  }

  return html`<main class="signin" id="main">
    <div class="signin-card">
      <div class="brand brand-large"><span class="brand-mark" aria-hidden="true"></span>
        <span>${t("app.name")}</span></div>
      <h1>${t("signin.title")}</h1>
      <p class="intro">${t("signin.intro")}</p>
      ${error && html`<${Notice} tone="danger">${error}<//>`}
      ${ENVIRONMENT === "development" &&
      html`<div class="signin-dev">
        <button type="button" class="button button-primary button-wide" onClick=${demo} disabled=${busy}>
          ${t("signin.demo")}
        </button>
        <p class="hint">${t("signin.demoHint")}</p>
      </div>`}
      <form onSubmit=${submit} class="stack">
        <label for="token-input">${t("signin.paste")}</label>
        <textarea id="token-input" rows="3" autocomplete="off" spellcheck="false"
          value=${pasted} onInput=${(e) => setPasted(e.currentTarget.value)}
          aria-describedby="token-hint"></textarea>
        <p class="hint" id="token-hint">${t("signin.pasteHint")}</p>
        <button type="submit" class="button">${t("signin.submit")}</button>
      </form>
    </div>
  </main>`;
}

function Shell({ claims, route, lang, setLang, signOut, children }) {
  const { t } = useI18n();
  return html`<div class="shell">
    <a class="skip-link" href="#main">${t("app.skip")}</a>
    <header class="topbar">
      <div class="brand"><span class="brand-mark" aria-hidden="true"></span>
        <span class="brand-name">${t("app.name")}</span></div>
      <div class="topbar-right">
        <span class="who" title=${claims.sub || ""}>
          <span class="who-company">${claims.company_id}</span>
          <span class="who-role">${claims.role === "admin" ? t("role.admin") : t("role.member")}</span>
        </span>
        <div class="lang" role="group" aria-label=${t("app.language")}>
          ${["da", "en"].map(
            (code) => html`<button type="button" key=${code} class=${code === lang ? "on" : ""}
              aria-pressed=${code === lang ? "true" : "false"} onClick=${() => setLang(code)}>
              ${code.toUpperCase()}</button>`,
          )}
        </div>
        <button type="button" class="button button-quiet" onClick=${signOut}>${t("signin.out")}</button>
      </div>
    </header>
    <nav class="tabs" aria-label=${t("nav.label")}>
      ${PAGES.map(
        (page) => html`<a key=${page.id} href=${`#/${page.id}`}
          class=${route.page === page.id ? "tab on" : "tab"}
          aria-current=${route.page === page.id ? "page" : undefined}>${t(page.label)}</a>`,
      )}
    </nav>
    <main id="main" class="content">${children}</main>
    <footer class="footer">${t("app.footer")}</footer>
  </div>`;
}

function App() {
  const [lang, setLangState] = useState(initialLang);
  const i18n = useMemo(() => makeI18n(lang), [lang]);
  const [token, setToken] = useState(() => {
    const handed = takeFragmentToken();
    if (handed) storeToken(handed);
    return handed || storedToken();
  });
  const [signInMessage, setSignInMessage] = useState(null);
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  const [outcome, setOutcome] = useState(takeOAuthOutcome);
  const mainRef = useRef(null);

  const claims = useMemo(() => (token ? claimsOf(token) : null), [token]);
  const problem = token ? tokenProblem(claims) : null;

  const signOut = useCallback((message = null) => {
    forgetToken();
    setToken(null);
    setSignInMessage(typeof message === "string" ? message : null);
  }, []);

  useEffect(() => {
    if (problem) signOut(problem);
  }, [problem, signOut]);

  useEffect(() => {
    document.documentElement.lang = lang;
    document.title = i18n.t("app.title");
  }, [lang, i18n]);

  useEffect(() => {
    const onHash = () => {
      if (window.location.hash.startsWith("#token=")) {
        const handed = takeFragmentToken();
        if (handed) {
          storeToken(handed);
          setToken(handed);
        }
      }
      setRoute(parseRoute(window.location.hash));
    };
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  useEffect(() => {
    // Move focus to the new page's heading, for keyboard and screen-reader users.
    const heading = document.querySelector("main h1");
    if (heading && mainRef.current !== route.page) heading.focus({ preventScroll: true });
    mainRef.current = route.page;
  });

  const api = useMemo(
    () =>
      token && claims && !problem
        ? createApi(token, claims.company_id, () => signOut("signin.expired"))
        : null,
    [token, claims, problem, signOut],
  );

  function setLang(code) {
    setLangState(code);
    try {
      localStorage.setItem(LANG_KEY, code);
    } catch {
      /* not kept: fine */
    }
  }

  function onToken(value) {
    storeToken(value);
    setSignInMessage(null);
    setToken(value);
  }

  let body;
  if (!api) {
    body = html`<${SignIn} onToken=${onToken} message=${signInMessage} />`;
  } else {
    const canEdit = claims.role === "admin";
    const common = { api, canEdit };
    const page = {
      connect: () => html`<${ConnectPage} ...${common} outcome=${outcome} clearOutcome=${() => setOutcome(null)} />`,
      setup: () => html`<${SetupPage} ...${common} />`,
      categories: () => html`<${CategoriesPage} ...${common} />`,
      exports: () =>
        route.id
          ? html`<${ItemPage} ...${common} itemId=${route.id} key=${route.id} />`
          : html`<${ExportsPage} ...${common} />`,
      "data-sources": () => html`<${DataSourcesPage} ...${common} />`,
    }[route.page];
    body = html`<${Shell} claims=${claims} route=${route} lang=${lang} setLang=${setLang} signOut=${() => signOut()}>
      ${!canEdit && html`<${Notice} tone="info">${i18n.t("role.readOnly")}<//>`}
      ${page()}
    <//>`;
  }
  return html`<${I18n.Provider} value=${i18n}>${body}<//>`;
}

const root = document.getElementById("app");
root.textContent = "";
render(html`<${App} />`, root);
