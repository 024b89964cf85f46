// page_storage.js — bucket health and the bucket error journal, with filters.
import { api, enc } from "./api.js";
import { h, field, select, table, section, badge, guarded } from "./dom.js";

export async function storagePage({ view }) {
  view.append(h("h1", {}, "Storage"));
  const health = await api("GET", "/storage/bucket-health");
  view.append(section("Buckets", h("p", {}, "Overall: ", badge(health.ok ? "ok" : "unreachable")),
    table(health.buckets || [], [["name", "Bucket"], ["ok", "Health", (v) => badge(v ? "ok" : "unreachable")],
      ["latency_us", "Probe latency (µs)"], ["error", "Error", (e) => (e ? (e.message || JSON.stringify(e)) : "")]])));
  const bucket = select([["", "all buckets"], ...(health.buckets || []).map((b) => b.name)], "");
  const limit = h("input", { type: "number", min: 1, max: 100000, value: 100 });
  const text = h("input", { type: "search", placeholder: "op, key, code or message" });
  const out = h("div", { "aria-live": "polite" });
  let errors = [];
  function render() {
    const n = text.value.trim().toLowerCase();
    const rows = errors.filter((e) => !n || [e.op, e.key, e.code, e.message].join(" ").toLowerCase().includes(n));
    out.replaceChildren(rows.length ? table(rows, [["last_time", "Last"], ["bucket", "Bucket"], ["op", "Op"],
      ["key", "Key"], ["code", "Code"], ["status", "Status"], ["message", "Message"], ["count", "Count"]]) :
      h("p", {}, "No bucket errors."));
  }
  async function load() {
    const q = `?limit=${Number(limit.value) || 100}${bucket.value ? `&bucket=${enc(bucket.value)}` : ""}`;
    const r = await guarded(out, () => api("GET", `/storage/errors${q}`));
    if (r) { errors = r.errors || []; render(); }
  }
  text.addEventListener("input", render);
  view.append(section("Error journal", h("form", {
    class: "filters", onsubmit: (e) => { e.preventDefault(); load(); },
  }, field("Bucket", bucket), field("Newest", limit), field("Contains", text),
  h("button", { type: "submit" }, "Apply")), out));
  await load();
}
