// page_agents.js — what agents can do and did: the tools and their schemas, the audit log
// of tool calls with filters, paging and replay, and workspaces with their shortlists and
// activity.
import { api, enc } from "./api.js";
import { h, field, select, table, section, badge, guarded, errorBox, cellText, announce } from "./dom.js";

function toolsSection(tools) {
  return section("Tools", tools.length ? h("ul", { class: "plain" }, tools.map((t) =>
    h("li", { class: "card" },
      h("h3", {}, t.name, " ", badge(t.kind, "tag"), t.grants_write ? badge("writes", "pii") : null),
      h("p", {}, t.description || ""),
      h("p", { class: "muted" }, `version ${t.version} · allowed: ${((t.allow && t.allow.roles) || []).join(", ")}` +
        (t.rate ? ` · ${t.rate.per_minute}/min, burst ${t.rate.burst}` : "")),
      h("details", {}, h("summary", {}, "Input schema"), h("pre", { class: "json" }, JSON.stringify(t.input_schema, null, 2))))))
    : h("p", {}, "No tools you may call."));
}

function auditSection() {
  const tool = h("input", { placeholder: "any" });
  const principal = h("input", { placeholder: "any" });
  const outcome = select([["", "any"], "ok", "refused", "failed"], "");
  const since = h("input", { placeholder: "2026-03-01 or RFC 3339" });
  const until = h("input", { placeholder: "2026-03-02" });
  const out = h("div", { "aria-live": "polite" });
  const more = h("div");
  let rows = [];
  async function load(cursor) {
    const p = new URLSearchParams();
    for (const [k, c] of [["tool", tool], ["principal", principal], ["outcome", outcome], ["since", since], ["until", until]])
      if (c.value.trim()) p.set(k, c.value.trim());
    p.set("limit", "50");
    if (cursor) p.set("cursor", cursor);
    const r = await guarded(out, () => api("GET", `/audit?${p}`));
    if (!r) { more.replaceChildren(); return; }
    rows = cursor ? rows.concat(r.records || []) : (r.records || []);
    out.replaceChildren(rows.length ? table(rows, [
      ["ts", "When"], ["tool", "Tool"], ["principal", "Principal"], ["outcome", "Outcome", (v) => badge(v || "—")],
      ["via", "Via"], ["duration_us", "µs"], ["error", "Error", (e) => (e ? e.message || cellText(e) : "")],
      ["call_id", "", (id) => h("button", {
        type: "button", "aria-label": `Replay ${id}`, onclick: async (ev) => {
          const cell = ev.target.parentElement;
          try {
            const x = await api("POST", `/audit/${enc(id)}/replay`);
            cell.replaceChildren(badge(x.matches ? "replay matches" : "replay differs", x.matches ? "ok replay" : "stale replay"));
            announce(x.matches ? "Replay matches" : "Replay differs");
          } catch (e) {
            cell.replaceChildren(errorBox(e));
          }
        },
      }, "Replay")],
    ], { class: "audit" }) : h("p", {}, "No audit records match."));
    more.replaceChildren(r.next ? h("button", { type: "button", onclick: () => load(r.next) }, "Older records") : null);
  }
  const sec = section("Audit log", h("form", {
    class: "filters", onsubmit: (e) => { e.preventDefault(); load(); },
  }, field("Tool", tool), field("Principal", principal), field("Outcome", outcome), field("Since", since),
  field("Until", until), h("button", { type: "submit" }, "Apply")), out, more);
  load();
  return sec;
}

async function workspaceDetail(box, id) {
  const ws = await api("GET", `/workspaces/${enc(id)}`);
  const act = await api("GET", `/workspaces/${enc(id)}/activity`).catch(() => ({ activity: [] }));
  const lists = Object.keys(ws.shortlists || {});
  const parts = [h("h3", {}, ws.name || id), h("p", {}, ws.description || ""),
    h("p", { class: "muted" }, `${ws.kind} · ${ws.state} · owner ${ws.owner} · version ${ws.version}`)];
  for (const l of lists) {
    const sl = await api("GET", `/workspaces/${enc(id)}/shortlists/${enc(l)}`).catch((e) => ({ error: e }));
    parts.push(h("h4", {}, `Shortlist ${l}`), sl.error ? errorBox(sl.error) :
      table(sl.records || [], [["rank", "#"], ["dataset", "Dataset"], ["key", "Key"],
        ["status", "Status", (v) => badge(v || "—")], ["note", "Note"], ["row", "Row"]]));
  }
  const notes = ws.notes || [];
  if (notes.length) parts.push(h("h4", {}, "Notes"), h("ul", {}, notes.map((n) => h("li", {}, `${n.author} (${n.at}): ${n.text}`))));
  const events = act.activity || [];
  parts.push(h("h4", {}, "Activity"), events.length ? table(events.slice(0, 100), [["at", "When"], ["actor", "By"], ["kind", "What"], ["detail", "Detail"]]) : h("p", {}, "No activity."));
  box.replaceChildren(...parts);
}

export async function agentsPage({ view, me }) {
  view.append(h("h1", {}, "Agents"));
  const tools = (await api("GET", "/tools")).tools || [];
  view.append(toolsSection(tools));
  if (me.roles.includes("admin")) view.append(auditSection());
  else view.append(section("Audit log", h("p", {}, "The audit log is for admins.")));
  const wss = (await api("GET", "/workspaces")).workspaces || [];
  const detail = h("div", { class: "card ws-detail", "aria-live": "polite" });
  view.append(section("Workspaces", wss.length ? table(wss, [
    ["name", "Workspace", (v, w) => h("button", { type: "button", class: "link", onclick: () => guarded(detail, () => workspaceDetail(detail, w.id)) }, v || w.id)],
    ["kind", "Kind"], ["state", "State", (v) => badge(v)], ["owner", "Owner"], ["tier", "Tier"],
    ["shortlists", "Shortlists"], ["staged", "Staged"], ["updated_at", "Updated"],
  ]) : h("p", {}, "No workspaces."), detail));
}
