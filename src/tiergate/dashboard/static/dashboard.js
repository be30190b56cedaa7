// The tiergate dashboard: one GET of /dashboard/data, rendered without any framework.
// Every figure that the API also reports carries data-testid and data-value (the raw number),
// so a browser test can hold the page to /v1/usage and /v1/audit.
"use strict";

const REFRESH_MS = 10000;
const charts = [];

function usd(value) { return "$" + Number(value).toFixed(4); }
function pct(value) { return value === null || value === undefined ? "-" : (value * 100).toFixed(2) + "%"; }
function num(value) { return value === null || value === undefined ? "-" : Number(value).toFixed(3); }

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "style") node.setAttribute("style", value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function figure(testid, value, text) {
  return el("span", {"data-testid": testid, "data-value": String(value)}, text);
}

function card(label, testid, value, text) {
  return el("div", {class: "card"}, el("div", {class: "label"}, label),
    el("div", {class: "value"}, figure(testid, value, text)));
}

function renderTotals(data) {
  const total = data.usage.total;
  const audit = data.usage.audit || {spend_usd: 0, records: 0};
  const box = document.getElementById("totals");
  box.replaceChildren(
    card("requests", "total-requests", total.requests, total.requests.toLocaleString("en")),
    card("spend", "total-spend", total.spend_usd, usd(total.spend_usd)),
    card("strong-only", "total-strong-only", total.strong_only_usd, usd(total.strong_only_usd)),
    card("saved vs strong-only", "total-savings", total.savings_usd, usd(total.savings_usd)),
    card("saving share", "total-savings-share", total.savings_share, pct(total.savings_share)),
    card("audit spend (apart)", "audit-spend", audit.spend_usd, usd(audit.spend_usd)),
  );
}

function sized(container, height) {
  return {width: Math.max(320, Math.min(container.clientWidth || 900, 1100)), height};
}

function renderTimeline(data) {
  const container = document.getElementById("timeline");
  container.replaceChildren();
  const points = data.timeline.points;
  if (!points.length) { container.append(el("p", {class: "muted"}, "no answered requests yet")); return; }
  const xs = [], spend = [], strong = [], cheap = [];
  let s = 0, g = 0, c = 0;
  for (const point of points) {
    s += point.spend_usd; g += point.strong_only_usd; c += point.cheap_only_usd;
    xs.push(point.t); spend.push(s); strong.push(g); cheap.push(c);
  }
  if (xs.length === 1) { xs.unshift(xs[0] - data.timeline.bucket_s); spend.unshift(0); strong.unshift(0); cheap.unshift(0); }
  const options = {
    ...sized(container, 260),
    series: [
      {},
      {label: "tiergate", stroke: "#1d5fbf", width: 2, value: (u, v) => v === null ? "-" : usd(v)},
      {label: "strong-only", stroke: "#c62828", dash: [6, 4], value: (u, v) => v === null ? "-" : usd(v)},
      {label: "cheap-only", stroke: "#2e7d32", dash: [2, 3], value: (u, v) => v === null ? "-" : usd(v)},
    ],
    axes: [{}, {values: (u, ticks) => ticks.map((v) => "$" + v.toFixed(3)), size: 70}],
  };
  charts.push(new uPlot(options, [xs, spend, strong, cheap], container));
}

function gauge(report) {
  const scale = Math.max(report.error_budget * 3, report.window.upper_bound, 0.01);
  const left = Math.min(report.window.lower_bound / scale, 1) * 100;
  const right = Math.min(report.window.upper_bound / scale, 1) * 100;
  return el("div", {class: "gauge", title: "window bound (lower to upper) against the budget (red)"},
    el("div", {class: "bound", style: `left:${left}%;width:${Math.max(right - left, 0.5)}%`}),
    el("div", {class: "budget", style: `left:${(report.error_budget / scale) * 100}%`}));
}

function renderAudits(data) {
  const box = document.getElementById("audits");
  box.replaceChildren();
  const routes = Object.entries(data.audit).filter(([, report]) => report.window);
  if (!routes.length) { box.append(el("p", {class: "muted"}, "no route is audited (add an audit: section to the config)")); return; }
  for (const [route, report] of routes) {
    const breached = report.breached;
    const status = breached ? "breached" : report.status;
    const words = {breached: "BREACHED", within: "within budget", unproven: "not proven yet"}[status];
    box.append(el("div", {class: "card audit" + (breached ? " breached" : ""), "data-testid": `audit-${route}`},
      el("div", {}, el("strong", {}, route), " ",
        el("span", {class: "badge " + status, "data-testid": `audit-${route}-status`, "data-value": status}, words)),
      gauge(report),
      el("div", {}, "error bound (window, ", (report.confidence * 100).toFixed(0), "%): ",
        figure(`audit-${route}-lower`, report.window.lower_bound, pct(report.window.lower_bound)), " to ",
        figure(`audit-${route}-upper`, report.window.upper_bound, pct(report.window.upper_bound)),
        " against a budget of ", figure(`audit-${route}-budget`, report.error_budget, pct(report.error_budget))),
      el("div", {}, "audited: ", figure(`audit-${route}-audited`, report.window.audited, report.window.audited),
        " in the window (", figure(`audit-${route}-errors`, report.window.errors, report.window.errors),
        " disagree); since calibration ",
        figure(`audit-${route}-since-audited`, report.since_calibration.audited, report.since_calibration.audited)),
      el("div", {class: "muted"}, "reaction: ", report.reaction_engaged ? report.reaction_engaged + " (in force)" : report.reaction,
        " · audit cost ", figure(`audit-${route}-cost`, report.audit_cost_usd, usd(report.audit_cost_usd)),
        " · ", report.mode, ", sample rate ", pct(report.sample_rate))));
  }
}

function renderRoutes(data) {
  const table = document.getElementById("routes");
  table.replaceChildren(el("tr", {}, el("th", {}, "route"), el("th", {}, "requests"),
    el("th", {}, "spend"), el("th", {}, "strong-only"), el("th", {}, "tier shares")));
  for (const [route, figures] of Object.entries(data.usage.by_route)) {
    const shares = el("td", {});
    for (const [tier, share] of Object.entries(figures.tier_shares)) {
      shares.append(el("div", {}, el("span", {class: "share", style: `width:${share * 120}px`}),
        tier || "(none)", " ", figure(`route-${route}-share-${tier}`, share, pct(share))));
    }
    table.append(el("tr", {}, el("td", {}, route),
      el("td", {class: "num"}, figure(`route-${route}-requests`, figures.requests, figures.requests)),
      el("td", {class: "num"}, figure(`route-${route}-spend`, figures.spend_usd, usd(figures.spend_usd))),
      el("td", {class: "num"}, usd(figures.strong_only_usd)), shares));
  }
}

function histogram(container, title, signal) {
  const edges = signal.bin_edges;
  const xs = edges.slice(0, -1).map((edge, i) => (edge + edges[i + 1]) / 2);
  const box = el("div", {});
  container.append(box);
  box.append(el("div", {class: "muted"}, title));
  charts.push(new uPlot({
    width: 360, height: 180,
    series: [{}, {label: "live", stroke: "#1d5fbf", fill: "rgba(29,95,191,0.15)", paths: uPlot.paths.stepped({align: 0})},
      {label: "calibration", stroke: "#888", dash: [4, 3], paths: uPlot.paths.stepped({align: 0})}],
    scales: {x: {time: false}},
    axes: [{}, {values: (u, ticks) => ticks.map((v) => (v * 100).toFixed(0) + "%")}],
  }, [xs, signal.live_bins, signal.reference_bins], box));
}

function renderDrift(data) {
  const box = document.getElementById("drift");
  box.replaceChildren();
  for (const [route, report] of Object.entries(data.audit)) {
    const drift = report.drift;
    if (!drift) continue;
    const table = el("table", {"data-testid": `drift-${route}`},
      el("tr", {}, el("th", {}, route), el("th", {}, "live (window)"), el("th", {}, "calibration"), el("th", {}, "KS distance")),
      el("tr", {}, el("td", {}, `${drift.first_rung} confidence (mean)`),
        el("td", {class: "num"}, figure(`drift-${route}-confidence`, drift.confidence.live_mean, num(drift.confidence.live_mean))),
        el("td", {class: "num"}, num(drift.confidence.reference_mean)), el("td", {class: "num"}, num(drift.confidence.ks_distance))),
      el("tr", {}, el("td", {}, "similarity to training (mean)"),
        el("td", {class: "num"}, figure(`drift-${route}-similarity`, drift.similarity.live_mean, num(drift.similarity.live_mean))),
        el("td", {class: "num"}, num(drift.similarity.reference_mean)), el("td", {class: "num"}, num(drift.similarity.ks_distance))),
      el("tr", {}, el("td", {}, "escalation share"),
        el("td", {class: "num"}, figure(`drift-${route}-escalation`, drift.escalation.live, pct(drift.escalation.live))),
        el("td", {class: "num"}, pct(drift.escalation.reference)), el("td", {}, "")));
    const row = el("div", {class: "drift-route"}, table);
    box.append(row);
    if (drift.confidence.live_count || drift.confidence.reference_count) histogram(row, "confidence", drift.confidence);
    if (drift.similarity.live_count || drift.similarity.reference_count) histogram(row, "similarity to training", drift.similarity);
  }
  if (!box.children.length) box.append(el("p", {class: "muted"}, "no audited route"));
}

function renderKeys(data) {
  const table = document.getElementById("keys");
  table.replaceChildren(el("tr", {}, el("th", {}, "key"), el("th", {}, "name"), el("th", {}, "requests"), el("th", {}, "spend")));
  for (const key of data.top_keys) {
    table.append(el("tr", {}, el("td", {}, key.key_id), el("td", {}, key.name),
      el("td", {class: "num"}, key.requests),
      el("td", {class: "num"}, figure(`key-${key.key_id}-spend`, key.spend_usd, usd(key.spend_usd)))));
  }
}

function renderEscalations(data) {
  const table = document.getElementById("escalations");
  table.replaceChildren(el("tr", {}, el("th", {}, "time"), el("th", {}, "route"), el("th", {}, "text"),
    el("th", {}, "answered by"), el("th", {}, "trace")));
  for (const escalation of data.escalations.slice(0, 20)) {
    const trace = escalation.trace.map((step) =>
      `${step.tier}: ${step.answer === null ? "(" + (step.problem || "no answer") + ")" : JSON.stringify(step.answer)}` +
      (step.confidence === null ? "" : ` p=${step.confidence.toFixed(3)}`) +
      (step.threshold === null ? "" : ` / ${step.threshold.toFixed(3)}`) +
      (step.accepted ? " accepted" : "")).join(" → ");
    table.append(el("tr", {"data-testid": "escalation"},
      el("td", {}, new Date(escalation.at * 1000).toISOString().replace("T", " ").slice(0, 19)),
      el("td", {}, escalation.route), el("td", {}, escalation.text),
      el("td", {}, (escalation.tier || "human") + (escalation.accepted ? "" : " (unsure)")), el("td", {}, trace)));
  }
}

async function refresh() {
  const reply = await fetch("/dashboard/data" + location.search, {credentials: "same-origin"});
  if (!reply.ok) { document.getElementById("generated").textContent = "could not load: " + reply.status; return; }
  const data = await reply.json();
  for (const chart of charts.splice(0)) chart.destroy();
  renderTotals(data);
  renderTimeline(data);
  renderAudits(data);
  renderRoutes(data);
  renderDrift(data);
  renderKeys(data);
  renderEscalations(data);
  document.getElementById("generated").textContent =
    "updated " + new Date(data.generated_at * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  document.body.dataset.loaded = "true";
}

refresh();
setInterval(refresh, REFRESH_MS);
