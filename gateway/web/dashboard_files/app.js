// The team dashboard: plain JS, no libraries, no network beyond this gateway.
// Polls the admin API every few seconds; re-renders a section only when its data changed
// and the operator is not typing in it, so tables of hundreds of rows stay usable.
"use strict";

const POLL_MS = Math.max(500, Number(new URLSearchParams(location.search).get("poll")) || 5000);  // ?poll=ms
const COLORS = ["#1c7ed6", "#2f9e44", "#e8590c", "#ae3ec9", "#f59f00", "#0ca678", "#d6336c", "#5c7cfa", "#868e96", "#66a80f"];
const state = { key: sessionStorage.getItem("agw-admin-key") || "", timer: null, seen: {}, accounts: [], range: "30d" };

const $ = (sel) => document.querySelector(sel);
const esc = (v) => String(v === null || v === undefined ? "" : v).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const num = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + state.key }, options.body ? { "Content-Type": "application/json" } : {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!response.ok) {
    const message = (data && data.error && data.error.message) || ("HTTP " + response.status);
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return data;
}

function changed(name, data) {
  const text = JSON.stringify(data);
  if (state.seen[name] === text) return false;
  state.seen[name] = text;
  return true;
}

function typingIn(selector) {
  const active = document.activeElement;
  return active && active.closest && active.closest(selector) && active.tagName === "INPUT";
}

// -- time --

function left(seconds) {
  if (seconds === null || seconds === undefined) return "";
  seconds = Math.max(0, Math.round(seconds));
  if (seconds < 90) return seconds + "s";
  if (seconds < 5400) return Math.round(seconds / 60) + "m";
  if (seconds < 172800) return (seconds / 3600).toFixed(1) + "h";
  return (seconds / 86400).toFixed(1) + "d";
}

function until(iso) {
  if (!iso) return "";
  return left((Date.parse(iso) - Date.now()) / 1000);
}

// -- sign in --

async function signIn(event) {
  event.preventDefault();
  state.key = $("#login-key").value.trim();
  $("#login-error").textContent = "";
  try {
    await api("/admin/overview");
  } catch (e) {
    $("#login-error").textContent = e.status === 401 ? "That is not the admin key." : e.message;
    return;
  }
  sessionStorage.setItem("agw-admin-key", state.key);
  start();
}

function signOut() {
  sessionStorage.removeItem("agw-admin-key");
  state.key = "";
  clearTimeout(state.timer);
  $("#app").classList.add("hidden");
  $("#logout").classList.add("hidden");
  $("#login").classList.remove("hidden");
  $("#status-line").textContent = "not signed in";
}

function start() {
  $("#login").classList.add("hidden");
  $("#app").classList.remove("hidden");
  $("#logout").classList.remove("hidden");
  refresh();
}

async function refresh() {
  clearTimeout(state.timer);
  try {
    await Promise.all([loadOverview(), loadAccounts(), loadUsage(), loadKeys()]);
    $("#updated").textContent = "updated " + new Date().toLocaleTimeString();
    $("#status-line").textContent = "live · every " + POLL_MS / 1000 + "s";
  } catch (e) {
    if (e.status === 401) { signOut(); $("#login-error").textContent = "The admin key was refused; sign in again."; return; }
    $("#status-line").textContent = "update failed: " + e.message;
  }
  state.timer = setTimeout(refresh, POLL_MS);
}

// -- overview --

async function loadOverview() {
  const o = await api("/admin/overview");
  $("#live-rpm").textContent = o.live.requests_per_minute.toFixed(0);
  $("#live-epm").textContent = o.live.errors_per_minute.toFixed(0);
  $("#live-keys").textContent = num(o.keys);
  $("#gateway-version").textContent = o.version;
  if (!state.clientFromAccounts) $("#client-version").textContent = o.client_version || o.user_agent || "–";
}

// -- pool --

const KNOWN_ACCOUNT_FIELDS = new Set(["email", "state", "cooling_until", "cooling_reason", "disabled_reason", "validation_url",
  "project_id", "tier", "ineligible", "token_expires", "cooldowns", "quota", "quota_updated", "requests_served", "failures",
  "last_error", "last_error_at", "last_used", "in_flight", "sticky_sessions"]);

async function loadAccounts() {
  const view = await api("/admin/accounts");
  const accounts = view.accounts || [];
  state.accounts = accounts;
  const client = clientVersion(view);
  if (client) {
    state.clientFromAccounts = true;
    $("#client-version").textContent = client;
  }
  const counts = { active: 0, cooling: 0, disabled: 0 };
  accounts.forEach((a) => { counts[a.state] = (counts[a.state] || 0) + 1; });
  $("#live-accounts").textContent = accounts.length;
  $("#pool-summary").textContent = `${counts.active} active · ${counts.cooling} cooling · ${counts.disabled} disabled`;
  if (changed("accounts", accounts) || state.filterChanged) renderAccounts();
}

function clientVersion(view) {
  // The upstream client version, wherever /admin/accounts puts it (another part of the gateway adds it).
  for (const name of ["client_version", "upstream_client_version", "upstream_client", "client", "upstream", "user_agent"]) {
    const value = view[name];
    if (!value) continue;
    if (typeof value === "string") return value;
    if (typeof value === "object") {
      const inner = value.version || value.client_version || value.user_agent || value.current;
      if (typeof inner === "string") return inner + (value.source ? ` (${value.source})` : "");
    }
  }
  return null;
}

function fractionBar(fraction) {
  const f = Math.max(0, Math.min(1, Number(fraction)));
  const cls = f <= 0 ? "bar empty" : f < 0.2 ? "bar low" : "bar";
  return `<div class="${cls}" title="${Math.round(f * 100)}% left"><span style="width:${(f * 100).toFixed(1)}%"></span></div>`;
}

function windowsCell(a) {
  // Fields another part of the gateway adds when it knows them: 5-hour / weekly windows, credits, anything new.
  const out = [];
  for (const [name, value] of Object.entries(a)) {
    if (KNOWN_ACCOUNT_FIELDS.has(name) || value === null || value === undefined) continue;
    out.push(extraField(name, value));
  }
  return out.join("");
}

function extraField(name, value) {
  const label = esc(name.replace(/_/g, " "));
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const fraction = value.remaining_fraction ?? (value.used_fraction !== undefined ? 1 - value.used_fraction : undefined);
    const reset = value.reset_time || value.resets_at || value.reset;
    if (fraction !== undefined) {
      return `<div class="bars"><span>${label}</span>${fractionBar(fraction)}<span class="muted">${reset ? "resets in " + esc(until(reset)) : ""}</span></div>`;
    }
    const inner = Object.entries(value).map(([k, v]) => (v && typeof v === "object" ? extraField(name + " " + k, v) : `<div class="small">${label} ${esc(k)}: ${esc(v)}</div>`));
    return inner.join("");
  }
  if (typeof value === "string" && /^https:\/\//.test(value)) return `<div class="small"><a href="${esc(value)}" target="_blank" rel="noopener">${label}</a></div>`;
  return `<div class="small">${label}: ${esc(Array.isArray(value) ? value.join(", ") : value)}</div>`;
}

function renderAccounts() {
  state.filterChanged = false;
  const filter = $("#account-filter").value.trim().toLowerCase();
  const rows = [];
  for (const a of state.accounts) {
    const hay = (a.email + " " + a.state + " " + Object.keys(a.quota || {}).join(" ")).toLowerCase();
    if (filter && !hay.includes(filter)) continue;
    const quotaEntries = Object.entries(a.quota || {});
    const quotaRows = quotaEntries.map(([model, q]) =>
      `<span>${esc(model)}</span>${fractionBar(q.remaining_fraction ?? 0)}<span class="muted">${q.reset_time ? "resets in " + esc(until(q.reset_time)) : ""}</span>`).join("");
    // Compact for big pools: the scarcest model up front, every model one click away (kept open across updates).
    let quota = "";
    if (quotaEntries.length) {
      const [lowModel, low] = quotaEntries.reduce((m, e) => ((e[1].remaining_fraction ?? 0) < (m[1].remaining_fraction ?? 0) ? e : m));
      const open = state.openQuota && state.openQuota.has(a.email) ? " open" : "";
      quota = `<details data-email="${esc(a.email)}"${open}><summary><span class="bars inline"><span>${quotaEntries.length} models · lowest ${esc(lowModel)}</span>${fractionBar(low.remaining_fraction ?? 0)}`
        + `<span class="muted">${low.reset_time ? "resets in " + esc(until(low.reset_time)) : ""}</span></span></summary><div class="bars">${quotaRows}</div></details>`;
    }
    const cooldowns = Object.entries(a.cooldowns || {}).map(([model, c]) =>
      `<div class="small">${esc(model)}: <b>${esc(left(c.seconds_left))}</b> <span class="muted">${esc(c.reason || "")}</span></div>`).join("");
    let stateText = `<span class="state state-${esc(a.state)}">${esc(a.state)}</span>`;
    if (a.state === "cooling") stateText += `<div class="small muted">${esc(until(a.cooling_until))} · ${esc(a.cooling_reason || "")}</div>`;
    if (a.state === "disabled") stateText += `<div class="small muted">${esc(a.disabled_reason || "")}</div>`;
    if (/^https:\/\//.test(a.validation_url || "")) stateText += `<div class="small"><a href="${esc(a.validation_url)}" target="_blank" rel="noopener">validate this account</a></div>`;
    const error = a.last_error ? `${esc(a.last_error)}<div class="small muted">${esc(a.last_error_at || "")}</div>` : "";
    const toggle = a.state === "disabled" ? "enable" : "disable";
    rows.push(`<tr data-email="${esc(a.email)}"><td>${esc(a.email)}<div class="small muted">${esc(a.tier || "")} ${esc(a.project_id || "")}</div></td>`
      + `<td>${stateText}</td><td>${quota || '<span class="muted small">not polled yet</span>'}</td>`
      + `<td>${cooldowns}</td><td>${windowsCell(a)}</td><td class="small">${error}</td>`
      + `<td><button type="button" data-action="${toggle}">${toggle}</button> <button type="button" data-action="refresh">refresh</button></td></tr>`);
  }
  $("#accounts-table tbody").innerHTML = rows.join("") || '<tr><td colspan="7" class="muted">no accounts</td></tr>';
}

async function accountAction(event) {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const email = button.closest("tr").dataset.email;
  button.disabled = true;
  try {
    await api(`/admin/accounts/${encodeURIComponent(email)}/${button.dataset.action}`, { method: "POST", body: "{}" });
  } catch (e) {
    alertRow(button, e.message);
  }
  state.seen.accounts = null;
  refresh();
}

function alertRow(button, message) {
  const cell = button.parentElement;
  const note = document.createElement("div");
  note.className = "error small";
  note.textContent = message;
  cell.appendChild(note);
}

// -- usage --

async function loadUsage() {
  const range = $("#usage-range").value;
  const [byKey, byModel] = await Promise.all([
    api(`/admin/usage?since=${range}&by=key&series=1`),
    api(`/admin/usage?since=${range}&by=model&series=1`),
  ]);
  if (!changed("usage", [range, byKey, byModel])) return;
  const total = byKey.rows.reduce((s, r) => s + r.requests, 0);
  const tokens = byKey.rows.reduce((s, r) => s + r.total_tokens, 0);
  $("#usage-summary").textContent = `${num(total)} requests · ${num(tokens)} tokens`;
  usageTable("#usage-keys", byKey.rows);
  usageTable("#usage-models", byModel.rows);
  const days = dayList(byKey.since);
  const requests = {};
  byKey.series.forEach((r) => { requests[r.day] = (requests[r.day] || 0) + r.requests; });
  drawBars("#chart-requests", days, { requests: requests }, ["requests"]);
  drawStacked("#chart-models", days, byModel.series);
  drawStacked("#chart-keys", days, byKey.series);
}

function usageTable(selector, rows) {
  $(selector + " tbody").innerHTML = rows.map((r) => `<tr data-group="${esc(r.group)}"><td>${esc(r.group)}</td><td class="num">${num(r.requests)}</td>`
    + `<td class="num">${num(r.errors)}</td><td class="num">${num(r.prompt_tokens)}</td><td class="num">${num(r.output_tokens)}</td>`
    + `<td class="num">${num(r.thought_tokens)}</td><td class="num">${num(r.cached_tokens)}</td><td class="num">${num(r.total_tokens)}</td>`
    + `<td class="num">${num(Math.round(r.avg_latency_ms))}</td></tr>`).join("") || '<tr><td colspan="9" class="muted">nothing recorded yet</td></tr>';
}

function dayList(since) {
  const out = [];
  const start = new Date(Math.floor(since / 86400) * 86400 * 1000);
  for (let d = start; d <= new Date(); d = new Date(d.getTime() + 86400000)) out.push(d.toISOString().slice(0, 10));
  return out.slice(-90);
}

function drawStacked(selector, days, series) {
  const totals = {};
  series.forEach((r) => { totals[r.group] = (totals[r.group] || 0) + r.total_tokens; });
  let groups = Object.keys(totals).sort((a, b) => totals[b] - totals[a]);
  const top = groups.slice(0, COLORS.length - 1);
  const values = {};
  series.forEach((r) => {
    const g = top.includes(r.group) ? r.group : "other";
    values[g] = values[g] || {};
    values[g][r.day] = (values[g][r.day] || 0) + r.total_tokens;
  });
  groups = groups.length > top.length ? top.concat(["other"]) : top;
  drawBars(selector, days, values, groups);
}

function drawBars(selector, days, values, groups) {
  const W = 600, H = 180, left = 46, bottom = 18, top = 8;
  const n = Math.max(1, days.length);
  const step = (W - left - 4) / n;
  const stackTotals = days.map((d) => groups.reduce((s, g) => s + ((values[g] || {})[d] || 0), 0));
  const max = Math.max(1, ...stackTotals);
  const y = (v) => H - bottom - (v / max) * (H - bottom - top);
  let svg = `<svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label="chart">`;
  for (const f of [0, 0.5, 1]) {
    const v = max * f;
    svg += `<line x1="${left}" x2="${W}" y1="${y(v)}" y2="${y(v)}" stroke="#e1e4e8"/><text x="${left - 4}" y="${y(v) + 3}" text-anchor="end">${esc(short(v))}</text>`;
  }
  days.forEach((day, i) => {
    let base = 0;
    groups.forEach((g, gi) => {
      const v = (values[g] || {})[day] || 0;
      if (v > 0) {
        svg += `<rect class="seg" data-day="${day}" data-group="${esc(g)}" x="${(left + i * step + step * 0.12).toFixed(1)}" y="${y(base + v).toFixed(1)}" width="${(step * 0.76).toFixed(1)}" height="${(y(base) - y(base + v)).toFixed(1)}" fill="${COLORS[gi % COLORS.length]}"><title>${esc(g)} ${day}: ${num(v)}</title></rect>`;
      }
      base += v;
    });
    if (n <= 10 || i % Math.ceil(n / 8) === 0) svg += `<text x="${(left + i * step + step / 2).toFixed(1)}" y="${H - 4}" text-anchor="middle">${day.slice(5)}</text>`;
  });
  svg += "</svg>";
  const legend = groups.length > 1 ? `<div class="legend">${groups.map((g, gi) => `<span><i style="background:${COLORS[gi % COLORS.length]}"></i>${esc(g)}</span>`).join("")}</div>` : "";
  $(selector).innerHTML = svg + legend;
}

function short(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e3) return (v / 1e3).toFixed(1) + "k";
  return String(Math.round(v));
}

// -- keys --

async function loadKeys() {
  const data = await api("/admin/keys");
  if (typingIn("#keys-table")) return;
  if (!changed("keys", data.keys)) return;
  $("#keys-table tbody").innerHTML = data.keys.map((k) => {
    const active = k.state === "active";
    const editable = (field, value, cls = "") => active ? `<input class="${cls}" data-field="${field}" value="${esc(value)}">` : esc(value);
    return `<tr data-key="${esc(k.name)}"><td>${esc(k.name)}</td><td><span class="state state-${esc(k.state)}">${esc(k.state)}</span></td>`
      + `<td class="small">${esc(k.expires || "never")}</td><td>${editable("rpm", k.rpm || "")}</td><td>${editable("tokens_per_day", k.tokens_per_day || "")}</td>`
      + `<td>${editable("models", (k.models || []).join(", "), "models")}</td><td class="num">${num(k.tokens_today)}</td><td class="small">${esc(k.note)}</td>`
      + `<td>${active ? '<button type="button" data-action="save">save</button> <button type="button" class="danger" data-action="revoke">revoke</button>' : ""}</td></tr>`;
  }).join("") || '<tr><td colspan="9" class="muted">no keys yet</td></tr>';
}

async function createKey(event) {
  event.preventDefault();
  $("#key-error").textContent = "";
  const models = $("#key-models").value.split(",").map((s) => s.trim()).filter(Boolean);
  const body = { name: $("#key-name").value.trim(), rpm: $("#key-rpm").value || 0, tokens_per_day: $("#key-tokens").value || 0,
    models: models, ttl_days: $("#key-ttl").value || null, note: $("#key-note").value };
  try {
    const made = await api("/admin/keys", { method: "POST", body: JSON.stringify(body) });
    $("#new-key-name").textContent = made.record.name;
    $("#new-key").textContent = made.key;
    $("#new-key-box").classList.remove("hidden");
    $("#key-form").reset();
  } catch (e) {
    $("#key-error").textContent = e.message;
  }
  state.seen.keys = null;
  refresh();
}

async function keyAction(event) {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const row = button.closest("tr");
  const name = row.dataset.key;
  $("#key-error").textContent = "";
  try {
    if (button.dataset.action === "revoke") {
      if (!button.classList.contains("armed")) {  // two clicks: no dialog, no accident
        button.classList.add("armed");
        button.textContent = "really revoke?";
        setTimeout(() => { button.classList.remove("armed"); button.textContent = "revoke"; }, 4000);
        return;
      }
      await api(`/admin/keys/${encodeURIComponent(name)}/revoke`, { method: "POST", body: "{}" });
    } else {
      const value = (field) => row.querySelector(`input[data-field="${field}"]`).value;
      await api(`/admin/keys/${encodeURIComponent(name)}`, { method: "POST", body: JSON.stringify({
        rpm: value("rpm") || 0, tokens_per_day: value("tokens_per_day") || 0,
        models: value("models").split(",").map((s) => s.trim()).filter(Boolean) }) });
    }
  } catch (e) {
    $("#key-error").textContent = name + ": " + e.message;
  }
  document.activeElement && document.activeElement.blur();
  state.seen.keys = null;
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", signIn);
  $("#logout").addEventListener("click", signOut);
  $("#accounts-table").addEventListener("click", accountAction);
  state.openQuota = new Set();
  $("#accounts-table").addEventListener("toggle", (event) => {
    const email = event.target.dataset && event.target.dataset.email;
    if (email) event.target.open ? state.openQuota.add(email) : state.openQuota.delete(email);
  }, true);
  $("#account-filter").addEventListener("input", () => { state.filterChanged = true; renderAccounts(); });
  $("#usage-range").addEventListener("change", () => { state.seen.usage = null; refresh(); });
  $("#key-form").addEventListener("submit", createKey);
  $("#keys-table").addEventListener("click", keyAction);
  $("#new-key-dismiss").addEventListener("click", () => { $("#new-key-box").classList.add("hidden"); $("#new-key").textContent = ""; });
  if (state.key) start();
});
