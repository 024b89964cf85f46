// page_search.js — search an index: pick it, type a query, see the hits with scores,
// chunk text and chosen columns; a filter box (SQL over the dataset, as the API takes it).
import { api, enc } from "./api.js";
import { h, field, select, table, guarded, announce } from "./dom.js";

export async function searchPage({ view }) {
  const res = await api("GET", "/vectors/indexes");
  const indexes = res.indexes || [];
  view.append(h("h1", {}, "Search"));
  if (!indexes.length) {
    view.append(h("p", {}, "No vector indexes yet: create one with POST /vectors/indexes."));
    return;
  }
  const idx = select(indexes.map((i) => [i.name, `${i.name} (${i.dataset}, ${i.model})`]), indexes[0].name, { name: "index" });
  const q = h("input", { type: "search", name: "query", placeholder: "Senior DevOps engineer in Chicago", required: true });
  const mode = select(["vector", "text", "hybrid"], "vector");
  const k = h("input", { type: "number", name: "k", min: 1, max: 1000, value: 10 });
  const filter = h("input", { name: "filter", placeholder: "city = 'Chicago' AND years_experience >= 5" });
  const include = h("input", { name: "include", placeholder: "full_name, city" });
  const out = h("div", { "aria-live": "polite" });
  const cols = h("small", { class: "muted" });
  async function showColumns() {
    const ix = indexes.find((i) => i.name === idx.value);
    const ds = await guarded(null, () => api("GET", `/catalog/datasets/${enc(ix.dataset)}`));
    cols.textContent = ds ? `columns: ${(ds.columns || []).map((c) => c.name).join(", ")}` : "";
  }
  idx.addEventListener("change", showColumns);
  showColumns();
  const form = h("form", {
    class: "card", role: "search", onsubmit: async (e) => {
      e.preventDefault();
      const body = { query: q.value, k: Number(k.value) || 10, mode: mode.value };
      if (filter.value.trim()) body.filter = filter.value.trim();
      const inc = include.value.split(",").map((s) => s.trim()).filter(Boolean);
      if (inc.length) body.include = inc;
      const r = await guarded(out, () => api("POST", `/vectors/indexes/${enc(idx.value)}/search`, body));
      if (!r) return;
      announce(`${r.hits.length} hits`);
      const extra = [...new Set(r.hits.flatMap((x) => Object.keys(x.columns || {})))];
      out.replaceChildren(
        h("p", { class: "muted" }, `${r.hits.length} hits · ${r.mode} · ${r.method || ""} · ${r.took_us} µs` +
          (r.filter ? ` · filter matched ${r.filter.matched_documents} documents${r.filter.cached ? " (cached)" : ""}` : "")),
        table(r.hits.map((x, i) => ({ rank: i + 1, ...x, ...Object.fromEntries(extra.map((c) => [`col:${c}`, (x.columns || {})[c]])) })), [
          ["rank", "#"], ["doc_id", "Document"], ["score", "Score", (v) => (typeof v === "number" ? v.toFixed(4) : "—")],
          ["chunk_text", "Text", (v) => h("span", { class: "chunk" }, v ?? "")],
          ...extra.map((c) => [`col:${c}`, c]),
        ], { class: "hits" }));
    },
  }, field("Index", idx), field("Query", q), cols,
  h("div", { class: "filters" }, field("Mode", mode), field("Hits", k)),
  field("Filter (SQL over the dataset)", filter), field("Columns to include", include),
  h("button", { type: "submit", class: "primary" }, "Search"));
  view.append(form, out);
  q.focus();
}
