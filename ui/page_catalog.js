// page_catalog.js — the catalog (datasets with owner, sensitivity, tags, rows, size and
// freshness; search and filters) and a dataset's page (columns, metadata — editable by
// writers —, lineage, versions, a preview, the change feed between two versions and one
// record's history).
import { api, enc } from "./api.js";
import { h, field, select, table, section, badge, errorBox, guarded, fmtBytes, fmtNum, fmtAge,
  cellText } from "./dom.js";
import { grid } from "./grid.js";

export const canWrite = (me) => me.roles.includes("admin") || me.roles.includes("writer");

function freshnessBadge(f) {
  const s = (f && f.status) || "unknown";
  const title = f && f.sla_s ? `SLA ${f.sla_s}s, last ingest ${fmtAge(f.age_s)}` : "no freshness SLA set";
  const b = badge(s, `fresh-${s}`);
  b.title = title;
  return b;
}

export async function catalogPage({ view }) {
  const out = h("div");
  view.append(h("h1", {}, "Catalog"), out);
  const res = await api("GET", "/catalog/datasets");
  const all = res.datasets || [];
  const q = h("input", { type: "search", placeholder: "name, description, owner or tag" });
  const sens = select([["", "any"], "public", "internal", "confidential", "pii"], "");
  const fresh = select([["", "any"], "fresh", "stale", "unknown"], "");
  const tags = [...new Set(all.flatMap((d) => (d.metadata && d.metadata.tags) || []))].sort();
  const tag = select([["", "any"], ...tags], "");
  const count = h("p", { class: "muted", "aria-live": "polite" });
  const list = h("div");
  const filters = h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
    field("Search", q), field("Sensitivity", sens), field("Freshness", fresh), field("Tag", tag));
  function render() {
    const needle = q.value.trim().toLowerCase();
    const rows = all.filter((d) => {
      const m = d.metadata || {};
      const text = [d.name, m.description, m.owner, ...(m.tags || [])].join(" ").toLowerCase();
      return (!needle || text.includes(needle)) && (!sens.value || m.sensitivity === sens.value) &&
        (!fresh.value || (d.freshness && d.freshness.status) === fresh.value) &&
        (!tag.value || (m.tags || []).includes(tag.value));
    });
    count.textContent = `${rows.length} of ${all.length} datasets`;
    list.replaceChildren(rows.length ? table(rows, [
      ["name", "Dataset", (v) => h("a", { href: `#/datasets/${enc(v)}` }, v)],
      ["metadata", "Owner", (m) => (m && m.owner) || "—"],
      ["metadata", "Sensitivity", (m) => badge((m && m.sensitivity) || "internal")],
      ["metadata", "Tags", (m) => ((m && m.tags) || []).map((t) => badge(t, "tag"))],
      ["row_count", "Rows", fmtNum],
      ["bytes", "Size", fmtBytes],
      ["version", "Version"],
      ["bucket", "Bucket"],
      ["freshness", "Freshness", freshnessBadge],
    ], { class: "datasets" }) : h("p", {}, all.length ? "No dataset matches." : "No datasets yet: ingest one with POST /ingest/file."));
  }
  for (const c of [q, sens, fresh, tag]) c.addEventListener("input", render);
  out.append(filters, count, list);
  render();
}

function metadataForm(name, ds, onSaved) {
  const m = ds.metadata || {};
  const owner = h("input", { value: m.owner || "" });
  const desc = h("textarea", { rows: 2, text: m.description || "" });
  const sens = select(["public", "internal", "confidential", "pii"], m.sensitivity || "internal");
  const tags = h("input", { value: (m.tags || []).join(", ") });
  const sla = h("input", { type: "number", min: 1, value: m.freshness_sla_s ?? "" });
  const out = h("div", { "aria-live": "polite" });
  return h("form", {
    class: "card", onsubmit: async (e) => {
      e.preventDefault();
      const body = {
        owner: owner.value.trim(), description: desc.value, sensitivity: sens.value,
        tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean),
        freshness_sla_s: sla.value === "" ? null : Number(sla.value),
      };
      const r = await guarded(out, () => api("PATCH", `/catalog/datasets/${enc(name)}`, body));
      if (r) onSaved(r.version);
    },
  }, h("h3", {}, "Edit metadata"), field("Owner", owner), field("Description", desc),
  field("Sensitivity", sens), field("Tags (comma separated)", tags),
  field("Freshness SLA (seconds)", sla, "empty: no SLA"),
  h("button", { type: "submit", class: "primary" }, "Save metadata"), out);
}

export async function datasetPage(ctx) {
  const { view, args, me } = ctx;
  const name = args[0];
  const ds = await api("GET", `/catalog/datasets/${enc(name)}`);
  const m = ds.metadata || {};
  view.append(h("p", {}, h("a", { href: "#/catalog" }, "← Catalog")),
    h("h1", {}, name),
    ctx.flash ? h("p", { class: "ok flash", role: "status" }, ctx.flash) : null,
    h("p", {}, m.description || h("span", { class: "muted" }, "no description")),
    h("dl", { class: "facts" },
      h("dt", {}, "Owner"), h("dd", {}, m.owner || "—"),
      h("dt", {}, "Sensitivity"), h("dd", {}, badge(m.sensitivity || "internal")),
      h("dt", {}, "Rows"), h("dd", {}, fmtNum(ds.row_count)),
      h("dt", {}, "Size"), h("dd", {}, fmtBytes(ds.bytes)),
      h("dt", {}, "Version"), h("dd", {}, `${ds.version} (${ds.change}, ${ds.created_at} by ${ds.created_by})`),
      h("dt", {}, "Freshness"), h("dd", {}, freshnessBadge(ds.freshness)),
      h("dt", {}, "Tags"), h("dd", {}, (m.tags || []).map((t) => badge(t, "tag"))),
      h("dt", {}, "Primary key"), h("dd", {}, (m.primary_key || []).join(", ") || "—")));

  view.append(section("Columns", table(ds.columns || [], [
    ["name", "Column"], ["type", "Type"], ["sensitivity", "Sensitivity", (v) => badge(v || "internal")],
    ["mask", "Mask", (v) => v || "—"],
    ["suggested_sensitivity", "Suggested", (v, r) => (v ? `${v} (${r.suggestion_reason})` : "—")],
  ])));
  if (canWrite(me))
    view.append(metadataForm(name, ds, (version) => {
      view.replaceChildren();
      datasetPage({ ...ctx, flash: `Saved as version ${version}.` }).catch((e) => view.replaceChildren(errorBox(e)));
    }));
  const lin = m.lineage || {};
  view.append(section("Lineage", Object.keys(lin).length ?
    h("dl", { class: "facts" }, Object.entries(lin).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, cellText(v))])) :
    h("p", { class: "muted" }, "No lineage recorded.")));

  const versions = (await api("GET", `/catalog/datasets/${enc(name)}/versions`)).versions || [];
  view.append(section("Versions", h("ol", { class: "timeline", reversed: true },
    versions.slice().reverse().map((v) => h("li", {},
      h("strong", {}, `v${v.version}`), ` ${v.change} · ${v.created_at} · ${v.created_by} · `,
      `${fmtNum(v.row_count)} rows · ${fmtBytes(v.bytes)}`, v.state !== "live" ? badge(v.state) : null)))));

  const preview = h("div");
  view.append(section("Preview", preview));
  guarded(preview, async () => {
    const r = await api("POST", "/query", { sql: `SELECT * FROM "${name.replace(/"/g, '""')}" LIMIT 100` });
    preview.replaceChildren(h("p", { class: "muted" }, `First ${r.row_count} rows`),
      grid(r.columns, r.rows, { label: `Preview of ${name}`, height: 300 }));
  });

  const vs = versions.map((v) => v.version);
  const from = select([0, ...vs], Math.max(0, (vs[vs.length - 1] || 1) - 1), { name: "from_version" });
  const to = select(vs, vs[vs.length - 1], { name: "to_version" });
  const feed = h("div", { "aria-live": "polite" });
  view.append(section("Changes between versions", h("form", {
    class: "filters", onsubmit: async (e) => {
      e.preventDefault();
      await guarded(feed, async () => {
        const r = await api("GET", `/datasets/${enc(name)}/changes?from_version=${from.value}&to_version=${to.value}`);
        const rows = [
          ...(r.inserted || []).map((x) => ({ change: "inserted", row: x })),
          ...(r.updated || []).map((x) => ({ change: "updated", row: x.after, before: x.before })),
          ...(r.deleted || []).map((x) => ({ change: "deleted", row: x })),
        ];
        feed.replaceChildren(h("p", {}, `${(r.inserted || []).length} inserted, ${(r.updated || []).length} updated, ${(r.deleted || []).length} deleted${r.truncated ? " (truncated)" : ""}`),
          table(rows.slice(0, 500), [["change", "Change", (v) => badge(v)], ["row", "Row"], ["before", "Before"]]));
      });
    },
  }, field("From version", from), field("To version", to),
  h("button", { type: "submit" }, "Show changes")), feed));

  const key = h("input", { name: "key", placeholder: (m.primary_key || ["key"]).join(",") });
  const hist = h("div", { "aria-live": "polite" });
  view.append(section("A record's history", h("form", {
    class: "filters", onsubmit: async (e) => {
      e.preventDefault();
      await guarded(hist, async () => {
        const r = await api("GET", `/datasets/${enc(name)}/rows/${enc(key.value.trim())}/history`);
        hist.replaceChildren(h("h3", {}, "Current"), h("pre", { class: "json" }, JSON.stringify(r.current, null, 2)),
          h("h3", {}, `History (${(r.history || []).length})`),
          table(r.history || [], [["version", "Version"], ["op", "Op"], ["ts", "When"], ["actor", "By"],
            ["field", "Field"], ["old_value", "Old"], ["new_value", "New"]]));
      });
    },
  }, field("Primary key value", key), h("button", { type: "submit" }, "Show history")), hist));
}
