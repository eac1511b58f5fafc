// Categories: the expense accounts of Dinero's Kontoplan (2000–9399) with the admin's friendly
// name, the hidden flag and the default tax code, edited inline; deactivated ones shown.
import { useEffect, useMemo, useState } from "./vendor/hooks.mjs";
import { Badge, ErrorNotice, Loading, Notice, PageHeader, html, useI18n, useLoad } from "./ui.js";

const SHOWN = 150;

function matches(category, query) {
  if (!query) return true;
  const q = query.toLowerCase();
  return (
    String(category.account_number).includes(q) ||
    category.account_name.toLowerCase().includes(q) ||
    (category.custom_name || "").toLowerCase().includes(q)
  );
}

function CategoryRow({ category, taxCodes, canEdit, onSaved, api }) {
  const { t } = useI18n();
  const [name, setName] = useState(category.custom_name || "");
  const [state, setState] = useState(null); // null | "saving" | "saved" | ApiError
  useEffect(() => setName(category.custom_name || ""), [category.custom_name]);

  async function patch(body) {
    setState("saving");
    try {
      const answer = await api.patch(`/categories/${category.id}`, body);
      onSaved(answer);
      setState("saved");
    } catch (err) {
      setState(err);
    }
  }

  function saveName() {
    const trimmed = name.trim();
    if (trimmed === (category.custom_name || "")) return;
    patch({ name: trimmed || null });
  }

  const label = `${category.account_number} ${category.account_name}`;
  return html`<tr class=${category.active ? "" : "inactive"} data-account=${category.account_number}>
    <td data-label=${t("categories.account")}>
      <span class="account-number">${category.account_number}</span>
      <span class="account-name">${category.account_name}</span>
    </td>
    <td data-label=${t("categories.name")}>
      <input type="text" class="inline-input" value=${name} placeholder=${category.account_name}
        disabled=${!canEdit} maxlength="255"
        aria-label=${t("categories.nameFor", { account: label })}
        onInput=${(e) => setName(e.currentTarget.value)}
        onBlur=${saveName}
        onKeyDown=${(e) => {
          if (e.key === "Enter") {
            e.preventDefault();
            saveName();
          } else if (e.key === "Escape") {
            setName(category.custom_name || "");
          }
        }} />
    </td>
    <td data-label=${t("categories.taxCode")}>
      <select value=${category.tax_code || ""} disabled=${!canEdit}
        aria-label=${t("categories.taxFor", { account: label })}
        onChange=${(e) => patch({ tax_code: e.currentTarget.value || null })}>
        <option value="">${t("categories.noTax")}</option>
        ${taxCodes.map((code) => html`<option key=${code.code} value=${code.code}>${code.code} · ${code.name}</option>`)}
      </select>
    </td>
    <td data-label=${t("categories.hidden")} class="center">
      <input type="checkbox" checked=${category.hidden} disabled=${!canEdit}
        aria-label=${t("categories.hideFor", { account: label })}
        onChange=${(e) => patch({ hidden: e.currentTarget.checked })} />
    </td>
    <td data-label=${t("categories.state")}>
      ${category.active
        ? category.hidden
          ? html`<${Badge} tone="neutral">${t("categories.hiddenByAdmin")}<//>`
          : html`<${Badge} tone="success">${t("categories.active")}<//>`
        : html`<${Badge} tone="danger">${t(`categories.inactive.${category.inactive_reason || "hidden_in_dinero"}`)}<//>`}
      <span class="row-state" role="status">
        ${state === "saving" && t("common.saving")}
        ${state === "saved" && html`<span class="ok">${t("common.saved")}</span>`}
        ${state && typeof state === "object" && html`<span class="bad">${state.problem?.detail || state.message}</span>`}
      </span>
    </td>
  </tr>`;
}

export function CategoriesPage({ api, canEdit }) {
  const { t, number } = useI18n();
  const [categories, setCategories] = useState(null);
  const [taxCodes, setTaxCodes] = useState([]);
  const [error, setError] = useState(null);
  const [query, setQuery] = useState("");
  const [filter, setFilter] = useState("all");
  const [showAll, setShowAll] = useState(false);

  const load = useLoad(async () => {
    const [listed, codes] = await Promise.all([api.get("/categories"), api.get("/tax-codes")]);
    setCategories(listed);
    setTaxCodes(codes);
  }, setError, [api]);

  const shown = useMemo(() => {
    if (!categories) return [];
    return categories.filter((c) => {
      if (!matches(c, query.trim())) return false;
      if (filter === "active") return c.active && !c.hidden;
      if (filter === "hidden") return c.hidden;
      if (filter === "inactive") return !c.active;
      if (filter === "renamed") return Boolean(c.custom_name);
      return true;
    });
  }, [categories, query, filter]);

  function onSaved(updated) {
    setCategories((list) => list.map((c) => (c.id === updated.id ? updated : c)));
  }

  if (!categories) {
    return html`<${PageHeader} title=${t("categories.title")} />${error ? html`<${ErrorNotice} error=${error} />` : html`<${Loading} />`}`;
  }
  const inactive = categories.filter((c) => !c.active).length;
  const visible = showAll ? shown : shown.slice(0, SHOWN);

  return html`
    <${PageHeader} title=${t("categories.title")} intro=${t("categories.intro")} />
    <${ErrorNotice} error=${error} />
    ${categories.length === 0
      ? html`<${Notice} tone="info">${t("categories.empty")} <a href="#/setup">${t("nav.setup")}</a><//>`
      : html`<div class="toolbar">
          <div class="field field-grow">
            <label for="category-search">${t("categories.search")}</label>
            <input id="category-search" type="search" value=${query} autocomplete="off"
              placeholder=${t("categories.searchPlaceholder")}
              onInput=${(e) => setQuery(e.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="category-filter">${t("categories.show")}</label>
            <select id="category-filter" value=${filter} onChange=${(e) => setFilter(e.currentTarget.value)}>
              ${["all", "active", "renamed", "hidden", "inactive"].map(
                (f) => html`<option key=${f} value=${f}>${t(`categories.filter.${f}`)}</option>`,
              )}
            </select>
          </div>
        </div>
        <p class="muted" role="status">
          ${t("categories.count", { shown: number(shown.length), total: number(categories.length) })}
          ${inactive > 0 && ` · ${t("categories.inactiveCount", { n: number(inactive) })}`}
        </p>
        ${shown.length > 0 && html`<div class="table-wrap">
          <table class="table table-cards">
            <thead><tr>
              <th scope="col">${t("categories.account")}</th>
              <th scope="col">${t("categories.name")}</th>
              <th scope="col">${t("categories.taxCode")}</th>
              <th scope="col" class="center">${t("categories.hidden")}</th>
              <th scope="col">${t("categories.state")}</th>
            </tr></thead>
            <tbody>
              ${visible.map(
                (c) => html`<${CategoryRow} key=${c.id} category=${c} taxCodes=${taxCodes}
                  canEdit=${canEdit} onSaved=${onSaved} api=${api} />`,
              )}
            </tbody>
          </table>
        </div>`}
        ${shown.length === 0 && html`<p class="empty">${t("categories.noMatch")}</p>`}
        ${!showAll && shown.length > SHOWN &&
        html`<button type="button" class="button" onClick=${() => setShowAll(true)}>
          ${t("categories.showAll", { n: number(shown.length) })}</button>`}`}`;
}
