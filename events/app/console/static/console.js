// The fnevents console: draws the topology as plain SVG, keeps it live from the
// server-sent events of /console/api/stream, and lists recent events, dead letters and
// what was loaded. No library, no build step.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const W = 190, H = 64, GAP_X = 70, GAP_Y = 16, PAD = 16;
const FIGURES = ["events", "delivered", "errors", "retries", "in flight", "dead letters",
                 "letters", "filtered", "backlog"];
const state = { version: 0, nodes: new Map(), edges: new Map(), selected: null, letters: [] };

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text == null ? "–" : String(text);
  if (cls) td.className = cls;
  return td;
}

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return response.json();
}

async function loadTopology() {
  const topo = await getJSON("/console/api/topology");
  state.version = topo.version;
  state.letters = topo.letters;
  draw(topo);
}

function draw(topo) {
  const svg = document.getElementById("graph");
  svg.replaceChildren();
  const defs = el("defs");
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
                                markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(el("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#afb8c1" }));
  defs.append(marker);
  svg.append(defs);
  const rows = new Map();
  const place = new Map();
  for (const node of topo.nodes) {
    const row = rows.get(node.rank) || 0;
    rows.set(node.rank, row + 1);
    place.set(node.id, { x: PAD + node.rank * (W + GAP_X), y: PAD + row * (H + GAP_Y) });
  }
  const edgeLayer = el("g"), nodeLayer = el("g");
  svg.append(edgeLayer, nodeLayer);
  state.edges.clear();
  for (const edge of topo.edges) {
    const a = place.get(edge.from), b = place.get(edge.to);
    if (!a || !b) continue;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const bend = Math.max(30, Math.abs(x2 - x1) / 2);
    const g = el("g", { class: "edge", "data-edge": edge.id });
    g.append(el("path", { d: `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}` }));
    const label = el("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, "text-anchor": "middle",
                               class: "rate", "data-edge": edge.id }, edge.counted ? "0/s" : "");
    g.append(el("title", {}, edge.label ? `${edge.label}` : edge.id), label);
    edgeLayer.append(g);
    state.edges.set(edge.id, { g, label, counted: edge.counted });
  }
  state.nodes.clear();
  for (const node of topo.nodes) {
    const { x, y } = place.get(node.id);
    const g = el("g", { class: `node ${node.kind}`, "data-id": node.id, "data-kind": node.kind,
                        transform: `translate(${x},${y})` });
    g.append(el("rect", { width: W, height: H }));
    g.append(el("text", { x: 8, y: 15, class: "kind" }, node.kind));
    g.append(el("text", { x: 8, y: 30, class: "title" }, clip(node.label, 26)));
    const figures = el("text", { x: 8, y: 45, class: "figures" }, "");
    const error = el("text", { x: 8, y: 58, class: "error" }, "");
    g.append(figures, error, el("title", {}, `${node.label}\n${node.detail}`));
    g.addEventListener("click", () => select(node));
    nodeLayer.append(g);
    state.nodes.set(node.id, { g, figures, error, node });
  }
  const width = Math.max(...[...place.values()].map((p) => p.x + W), 300) + PAD;
  const height = Math.max(...[...place.values()].map((p) => p.y + H), 200) + PAD;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.style.height = `${height}px`;
}

function clip(text, n) { return text.length > n ? text.slice(0, n - 1) + "…" : text; }

function number(v) {
  if (typeof v !== "number") return String(v);
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

function update(snapshot) {
  if (snapshot.version !== state.version) { loadTopology(); return; }
  for (const [id, figures] of Object.entries(snapshot.nodes)) {
    const shown = state.nodes.get(id);
    if (!shown) continue;
    const parts = FIGURES.filter((k) => k in figures && (figures[k] || k === "events"))
      .map((k) => `${k} ${number(figures[k])}`);
    shown.figures.textContent = clip(parts.join(" · "), 40);
    shown.figures.setAttribute("data-figures", JSON.stringify(figures));
    let error = figures["last error"] || "";
    if (error.startsWith(shown.node.label)) error = error.slice(shown.node.label.length).trim();
    shown.error.textContent = clip(error, 36);
    shown.g.classList.toggle("failing", Boolean(figures["errors"] || figures["dead letters"]));
  }
  for (const [id, rate] of Object.entries(snapshot.edges)) {
    const shown = state.edges.get(id);
    if (!shown || rate === null) continue;
    shown.label.textContent = `${number(rate)}/s`;
    shown.label.setAttribute("data-rate", rate);
    shown.g.classList.toggle("busy", rate > 0);
  }
}

function select(node) {
  for (const shown of state.nodes.values()) shown.g.classList.remove("selected");
  state.nodes.get(node.id)?.g.classList.add("selected");
  if (node.kind === "deadletter") { showLetters(node.label); return; }
  state.selected = (node.kind === "topic" || node.kind === "trigger") ? node.id : null;
  document.getElementById("recent-where").textContent = state.selected || "everywhere";
  refreshRecent();
}

async function refreshRecent() {
  const where = state.selected ? `&where=${encodeURIComponent(state.selected)}` : "";
  const { events } = await getJSON(`/console/api/recent?limit=30${where}`);
  const body = document.querySelector("#recent tbody");
  body.replaceChildren();
  for (const event of events) {
    const row = body.insertRow();
    row.className = "event";
    row.dataset.id = event.id;
    cell(row, new Date(event.time * 1000).toLocaleTimeString([], { hour12: false }));
    cell(row, event.where);
    cell(row, event.type).title = event.source;
    const outcomes = cell(row, "", "outcomes");
    for (const o of event.outcomes) {
      const span = document.createElement("span");
      span.className = `outcome ${o.outcome}`;
      span.textContent = `${o.subscriber}: ${o.outcome}`;
      span.title = o.detail || "";
      outcomes.append(span);
    }
    cell(row, clip(event.id, 24)).title = event.id;
    if (event.data) {
      const data = body.insertRow();
      data.insertCell();
      const td = cell(data, event.data, "data");
      td.colSpan = 4;
    }
  }
}

async function showLetters(topic) {
  document.getElementById("letters-panel").hidden = false;
  document.getElementById("letters-topic").textContent = topic;
  document.getElementById("replay").dataset.topic = topic;
  const found = await getJSON(`/console/api/deadletters?topic=${encodeURIComponent(topic)}`);
  document.getElementById("letters-note").textContent = found.unavailable ||
    `${found.letters.length} letter(s) on ${found.bus}`;
  const body = document.querySelector("#letters tbody");
  body.replaceChildren();
  for (const letter of found.letters) {
    const row = body.insertRow();
    row.className = "letter";
    row.dataset.id = letter.id;
    for (const key of ["id", "type", "destination", "status", "attempts", "reason"]) {
      cell(row, letter[key]);
    }
  }
}

async function replay() {
  const button = document.getElementById("replay");
  const result = document.getElementById("replay-result");
  const token = document.getElementById("token").value;
  const response = await fetch("/console/api/deadletters/replay", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ topic: button.dataset.topic }),
  });
  if (!response.ok) {
    result.textContent = `${response.status}: ${await response.text()}`;
    return;
  }
  const report = await response.json();
  result.textContent = report.error ||
    `replayed ${report.replayed} of ${report.listed}, ${report.failed.length} failed`;
  showLetters(button.dataset.topic);
}

async function loadLoaded() {
  const loaded = await getJSON("/console/api/loaded");
  const warnings = document.getElementById("warnings");
  warnings.replaceChildren(...loaded.warnings.map((w) => {
    const li = document.createElement("li");
    li.textContent = `warning: ${w}`;
    return li;
  }));
  const body = document.querySelector("#resources tbody");
  body.replaceChildren();
  for (const r of loaded.resources) {
    const row = body.insertRow();
    cell(row, r.kind);
    cell(row, `${r.namespace}/${r.name}`);
    cell(row, r.bus);
    cell(row, r.origin);
    cell(row, r.running ? "running" : "");
  }
  document.getElementById("report").textContent = loaded.report.join("\n");
}

function connect() {
  const status = document.getElementById("status");
  const stream = new EventSource("/console/api/stream");
  stream.onopen = () => { status.textContent = "live"; status.classList.add("live"); };
  stream.onmessage = (message) => update(JSON.parse(message.data));
  stream.onerror = () => { status.textContent = "reconnecting…"; status.classList.remove("live"); };
}

async function main() {
  document.getElementById("token").value = sessionStorage.getItem("fnevents-token") || "";
  document.getElementById("token").addEventListener("change", (e) => {
    sessionStorage.setItem("fnevents-token", e.target.value);
  });
  document.getElementById("replay").addEventListener("click", replay);
  await loadTopology();
  connect();
  loadLoaded();
  refreshRecent();
  setInterval(() => { if (!document.hidden) refreshRecent(); }, 1000);
}

main();
