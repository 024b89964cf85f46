// grid.js — a results grid that stays smooth at 100,000 rows: only the rows in view (plus a
// margin) exist in the page; scrolling moves them. Keyboard: the grid takes focus, arrows
// and Page Up/Down move the active row, Home/End jump.
import { h, cellText } from "./dom.js";

const ROW_H = 28;
const MARGIN = 10;

export function grid(columns, rows, { label = "Query results", height = 420 } = {}) {
  const widths = columns.map((c) => {
    let w = (c.name.length + (c.type || "").length) * 7.5 + 36;
    for (let i = 0; i < Math.min(rows.length, 200); i++)
      w = Math.max(w, Math.min(cellText(rows[i][c.name]).length, 60) * 7.5 + 16);
    return Math.min(Math.ceil(w), 480);
  });
  const total = widths.reduce((a, b) => a + b, 0);
  const template = widths.map((w) => `${w}px`).join(" ");
  const head = h("div", { class: "grid-head", role: "row", "aria-rowindex": 1 },
    columns.map((c) => h("div", { role: "columnheader", class: "grid-cell", title: c.type || "" },
      h("span", {}, c.name), h("small", { class: "muted" }, c.type || ""))));
  head.style.gridTemplateColumns = template;
  head.style.width = `${total}px`;
  const spacer = h("div", { class: "grid-spacer" });
  spacer.style.height = `${rows.length * ROW_H}px`;
  spacer.style.width = `${total}px`;
  const body = h("div", { class: "grid-rows", role: "rowgroup" });
  const viewport = h("div", {
    class: "grid-viewport", tabindex: 0, role: "grid", "aria-label": label,
    "aria-rowcount": rows.length + 1, "aria-colcount": columns.length,
  }, head, spacer, body);
  viewport.style.height = `${Math.min(height, (rows.length + 1) * ROW_H + 18)}px`;
  let active = 0;
  let drawn = [-1, -1];

  function draw(force) {
    const top = viewport.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW_H) - MARGIN);
    const last = Math.min(rows.length, Math.ceil((top + viewport.clientHeight) / ROW_H) + MARGIN);
    if (!force && first === drawn[0] && last === drawn[1]) return;
    drawn = [first, last];
    const out = [];
    for (let i = first; i < last; i++) {
      const r = rows[i];
      const row = h("div", {
        class: i === active ? "grid-row active" : "grid-row", role: "row", "aria-rowindex": i + 2,
        "aria-selected": i === active ? "true" : "false",
      }, columns.map((c) => {
        const v = r[c.name];
        return h("div", { role: "gridcell", class: v === null ? "grid-cell null" : "grid-cell" }, cellText(v));
      }));
      row.style.gridTemplateColumns = template;
      row.style.width = `${total}px`;
      row.style.transform = `translateY(${ROW_H * (i + 1)}px)`;
      out.push(row);
    }
    body.replaceChildren(...out);
  }

  function moveTo(i) {
    active = Math.max(0, Math.min(rows.length - 1, i));
    const y = active * ROW_H;
    const view = viewport.clientHeight - ROW_H;
    if (y < viewport.scrollTop) viewport.scrollTop = y;
    else if (y > viewport.scrollTop + view - ROW_H) viewport.scrollTop = y - view + ROW_H;
    draw(true);
  }

  viewport.addEventListener("scroll", () => requestAnimationFrame(() => draw(false)), { passive: true });
  viewport.addEventListener("keydown", (e) => {
    const page = Math.max(1, Math.floor(viewport.clientHeight / ROW_H) - 1);
    const step = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page }[e.key];
    if (step) moveTo(active + step);
    else if (e.key === "Home") moveTo(0);
    else if (e.key === "End") moveTo(rows.length - 1);
    else return;
    e.preventDefault();
  });
  // the first rows now (a detached viewport has no height yet), the rest once attached
  draw(true);
  requestAnimationFrame(() => draw(true));
  new ResizeObserver(() => draw(true)).observe(viewport);
  viewport.lhDrawnRows = () => body.children.length;
  return viewport;
}
