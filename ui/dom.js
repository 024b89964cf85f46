// dom.js — small helpers to build the page from elements (never from HTML strings, so
// nothing a dataset holds can become markup).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const clear = (el) => { el.replaceChildren(); return el; };

let uid = 0;
export const nextId = (p) => `${p}-${++uid}`;

// A labelled form control: field("Dataset", h("input", ...)) → <div><label for>…</label>…</div>
export function field(label, control, hint) {
  if (!control.id) control.id = nextId("f");
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control,
    hint ? h("small", { class: "muted" }, hint) : null);
}

export function select(options, value, attrs = {}) {
  return h("select", attrs, options.map((o) => {
    const [v, t] = Array.isArray(o) ? o : [o, o];
    return h("option", { value: v, selected: String(v) === String(value) }, t);
  }));
}

// The API's error as a person reads it: message, code, detail, hint.
export function errorBox(e) {
  return h("div", { class: "error", role: "alert" },
    h("strong", {}, e.message || String(e)),
    e.code ? h("span", { class: "code" }, ` ${e.status ? e.status + " " : ""}${e.code}`) : null,
    e.detail ? h("pre", { class: "detail" }, e.detail) : null,
    e.hint ? h("p", { class: "hint" }, "Hint: ", e.hint) : null);
}

// Run an async action, showing its error (if any) in `where` instead of throwing.
export async function guarded(where, f) {
  try {
    return await f();
  } catch (e) {
    if (e.name === "AbortError") return undefined;
    if (where) where.replaceChildren(errorBox(e));
    return undefined;
  }
}

export function badge(text, kind) {
  return h("span", { class: `badge ${kind || text}` }, text);
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}

export const fmtNum = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"));

export function fmtAge(s) {
  if (s === null || s === undefined) return "—";
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function cellText(v) {
  if (v === null || v === undefined) return "NULL";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

// A plain table of objects: cols is [[key, title, render?], ...].
export function table(rows, cols, attrs = {}) {
  return h("div", { class: "table-wrap" }, h("table", attrs,
    h("thead", {}, h("tr", {}, cols.map(([, t]) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, cols.map(([k, , f]) =>
      h("td", {}, f ? f(r[k], r) : cellText(r[k]))))))));
}

export function section(title, ...children) {
  const id = nextId("s");
  return h("section", { "aria-labelledby": id }, h("h2", { id }, title), children);
}

export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name, class: "hidden" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// Say something to screen readers (the page's polite live region).
export function announce(text) {
  const s = document.getElementById("status");
  if (!s) return;
  s.textContent = "";
  setTimeout(() => { s.textContent = text; }, 30);
}
