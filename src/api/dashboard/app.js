// wharf dashboard: a client of wharf's own REST API and /ws, with the API key the
// operator enters once (kept in sessionStorage, so it ends with the tab). No framework,
// no build step; every value from the server is inserted as text, never as HTML.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;
  const KEY = "wharf.apiKey";
  const MAX_EVENTS = 300;
  const QR_POLL_MS = 2000;
  const ACTIONS = ["start", "stop", "restart", "logout", "delete"];

  let apiKey = sessionStorage.getItem(KEY) || "";
  let selected = null;
  let ws = null;
  let wsRetry = null;
  let qrTimer = null;
  let lastQr = null;
  let qrUrl = null;
  let refreshing = null;
  // Cluster mode: session → the worker running it (null outside cluster mode).
  let workers = null;
  const sessions = new Map();
  const events = [];
  const eventNames = new Set();

  const showError = (e) => { $("error").textContent = e ? String(e.message || e) : ""; };
  const setConnection = (text) => { $("connection").textContent = text; };

  async function api(method, path, body, accept) {
    const headers = { "X-Api-Key": apiKey };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (accept) headers.Accept = accept;
    // Absolute: the page may have been opened as http://user:pass@host/dashboard, and
    // fetch refuses URLs resolved against one with credentials.
    const res = await fetch(location.origin + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) {
      let msg = `${res.status} ${res.statusText}`;
      try {
        const j = await res.json();
        if (j && j.message) msg = `${res.status}: ${[].concat(j.message).join(", ")}`;
      } catch (_) { /* not JSON */ }
      throw new Error(msg);
    }
    return res;
  }
  async function json(method, path, body) {
    const text = await (await api(method, path, body)).text();
    return text ? JSON.parse(text) : null;
  }
  // Runs an async UI action, reporting its failure in the alert region.
  const guarded = (fn) => async (...args) => {
    try { showError(null); await fn(...args); } catch (e) { showError(e); }
  };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }
  const account = (me) => (me ? `${me.pushName || ""} ${me.id || ""}`.trim() : "–");

  // ---- sessions ---------------------------------------------------------------------
  async function loadSessions() {
    const list = await json("GET", "/api/sessions?all=true");
    sessions.clear();
    for (const s of list) sessions.set(s.name, s);
    // Cluster mode: which worker holds each session's lease (the status's `cluster`
    // object; a key that may not read the server status simply gets no column).
    workers = null;
    try {
      const status = await json("GET", "/api/server/status");
      if (status.cluster) {
        workers = new Map(status.cluster.leases.map((l) => [l.session, l.owner || "–"]));
      }
    } catch (_) { workers = null; }
    renderSessions();
    if (selected) renderDetailStatus();
  }
  // Coalesces bursts of status events into one list request.
  function refreshSoon() {
    if (refreshing) return;
    refreshing = setTimeout(() => { refreshing = null; guarded(loadSessions)(); }, 150);
  }

  // Updates the rows in place (keyed by name) rather than rebuilding the table, so a
  // status event does not take the keyboard focus away from a button.
  function renderSessions() {
    const body = $("sessions").tBodies[0];
    const rows = new Map([...body.rows].map((r) => [r.dataset.session, r]));
    const sorted = [...sessions.values()].sort((a, b) => a.name.localeCompare(b.name));
    sorted.forEach((s, i) => {
      let row = rows.get(s.name);
      if (!row) row = sessionRow(s.name);
      rows.delete(s.name);
      const status = row.querySelector("td.status");
      if (status.textContent !== s.status) {
        status.textContent = s.status;
        status.dataset.status = s.status;
      }
      const me = row.querySelector("td.me");
      if (me.textContent !== account(s.me)) me.textContent = account(s.me);
      const worker = row.querySelector("td.worker");
      worker.hidden = !workers;
      const on = workers ? workers.get(s.name) || "–" : "";
      if (worker.textContent !== on) worker.textContent = on;
      if (body.rows[i] !== row) body.insertBefore(row, body.rows[i] || null);
    });
    for (const gone of rows.values()) gone.remove();
    $("sessions").querySelector("th.worker").hidden = !workers;
  }
  function sessionRow(name) {
    const buttons = ACTIONS.map((a) => el("button", {
      type: "button", class: "secondary", "data-action": a, "data-session": name,
      "aria-label": `${a} ${name}`, text: a,
    }));
    const open = el("button", {
      type: "button", "data-action": "open", "data-session": name,
      "aria-label": `Open ${name}`, text: name,
    });
    return el("tr", { "data-session": name },
      el("th", { scope: "row" }, open),
      el("td", { class: "status" }),
      el("td", { class: "me" }),
      el("td", { class: "worker", hidden: "" }),
      el("td", {}, ...buttons));
  }

  async function sessionAction(name, action) {
    if (action === "open") return select(name);
    if (action === "delete") {
      if (!window.confirm(`Delete session ${name}?`)) return;
      await api("DELETE", `/api/sessions/${enc(name)}`);
      if (selected === name) select(null);
    } else {
      await api("POST", `/api/sessions/${enc(name)}/${action}`);
    }
    await loadSessions();
  }

  // ---- one session: status, QR, pairing code, me, dead letters ---------------------------
  function select(name) {
    selected = name;
    lastQr = null;
    $("detail").hidden = !name;
    $("pair-code").textContent = "";
    if (!name) { stopQr(); return; }
    $("detail-name").textContent = name;
    $("send-session").value = name;
    renderDetailStatus();
    guarded(loadMe)();
    guarded(loadDead)();
  }

  function renderDetailStatus() {
    const s = sessions.get(selected);
    const status = s ? s.status : "UNKNOWN";
    const node = $("detail-status");
    if (node.textContent !== status) {
      node.textContent = status;
      node.dataset.status = status;
    }
    $("code-form").hidden = status !== "SCAN_QR_CODE";
    if (status === "SCAN_QR_CODE") startQr(); else stopQr();
    if (status === "WORKING" && $("me").textContent === "–") guarded(loadMe)();
  }

  function startQr() {
    $("qr-box").hidden = false;
    if (!qrTimer) pollQr();
  }
  function stopQr() {
    clearTimeout(qrTimer);
    qrTimer = null;
    lastQr = null;
    $("qr-box").hidden = true;
  }
  // The QR rotates (every ~20 s); its raw value is polled and the image fetched again
  // only when it changed.
  async function pollQr() {
    const name = selected;
    qrTimer = setTimeout(pollQr, QR_POLL_MS);
    try {
      const { value } = await json("GET", `/api/${enc(name)}/auth/qr?format=raw`);
      if (name !== selected || value === lastQr || !qrTimer) return;
      const blob = await (await api("GET", `/api/${enc(name)}/auth/qr`, undefined, "image/png")).blob();
      if (name !== selected || !qrTimer) return;
      lastQr = value;
      if (qrUrl) URL.revokeObjectURL(qrUrl);
      qrUrl = URL.createObjectURL(blob);
      const img = $("qr");
      img.src = qrUrl;
      img.dataset.qr = value;
    } catch (_) { /* between QR codes, or the status moved on: the next poll tells */ }
  }

  async function loadMe() {
    const me = await json("GET", `/api/sessions/${enc(selected)}/me`);
    $("me").textContent = me ? JSON.stringify(me, null, 2) : "–";
  }

  async function loadDead() {
    const list = await json("GET", `/api/wharf/sessions/${enc(selected)}/dead-letters`);
    const body = $("dead").tBodies[0];
    body.replaceChildren();
    for (const d of list) {
      body.append(el("tr", {},
        el("td", { text: String(d.id) }), el("td", { text: d.event }), el("td", { text: d.url }),
        el("td", { text: String(d.attempts) }), el("td", { text: d.lastError || "" }),
        el("td", {}, el("button", {
          type: "button", class: "secondary", "data-replay": String(d.id),
          "aria-label": `Replay dead letter ${d.id}`, text: "replay",
        }))));
    }
    if (!list.length) body.append(el("tr", {}, el("td", { colspan: "6", text: "None" })));
  }

  async function replay(id) {
    const base = `/api/wharf/sessions/${enc(selected)}/dead-letters`;
    const r = await json("POST", id === undefined ? `${base}/replay` : `${base}/${enc(id)}/replay`);
    setConnection(`Replayed ${r.replayed} dead letter(s)`);
    await loadDead();
  }

  // ---- event monitor (/ws) ---------------------------------------------------------------
  function connectWs() {
    clearTimeout(wsRetry);
    if (ws) { ws.onclose = null; ws.close(); }
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(`${scheme}://${location.host}/ws?x-api-key=${enc(apiKey)}&session=*&events=*`);
    ws.onopen = () => setConnection("Connected: live events on");
    ws.onmessage = (m) => {
      let e;
      try { e = JSON.parse(m.data); } catch (_) { return; }
      onEvent(e);
    };
    ws.onclose = (c) => {
      if (c.code === 1008) { setConnection("Wrong API key"); return; }
      setConnection("Live events disconnected; reconnecting…");
      wsRetry = setTimeout(connectWs, 3000);
    };
  }

  function onEvent(e) {
    if (e.event === "session.status" && e.payload) {
      const s = sessions.get(e.session);
      if (s) {
        s.status = e.payload.status;
        renderSessions();
        if (e.session === selected) renderDetailStatus();
      }
      // Created elsewhere, or `me` changed with the status: the list request tells.
      refreshSoon();
    }
    events.unshift(e);
    if (events.length > MAX_EVENTS) events.length = MAX_EVENTS;
    if (!eventNames.has(e.event)) {
      eventNames.add(e.event);
      $("event-names").append(el("option", { value: e.event }));
    }
    if (matches(e)) $("events").prepend(eventItem(e));
    const list = $("events");
    while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  }

  function matches(e) {
    const s = $("filter-session").value.trim();
    const ev = $("filter-event").value.trim();
    return (!s || e.session === s) && (!ev || e.event === ev || (ev.endsWith("*") && String(e.event).startsWith(ev.slice(0, -1))));
  }
  function eventItem(e) {
    const time = new Date(e.timestamp || Date.now()).toLocaleTimeString();
    return el("li", { "data-event": e.event, "data-session": e.session || "" },
      `${time} ${e.session} ${e.event} ${JSON.stringify(e.payload)}`);
  }
  function renderEvents() {
    $("events").replaceChildren(...events.filter(matches).map(eventItem));
  }

  // ---- wiring -------------------------------------------------------------------------------
  async function connect() {
    if (!apiKey) { setConnection("Enter the API key to connect"); return; }
    try {
      await loadSessions();
    } catch (e) {
      setConnection(String(e.message).startsWith("401") ? "Wrong API key" : "Not connected");
      throw e;
    }
    setConnection("Connected");
    connectWs();
  }

  $("api-key").value = apiKey;
  $("key-form").addEventListener("submit", guarded(async (ev) => {
    ev.preventDefault();
    apiKey = $("api-key").value.trim();
    sessionStorage.setItem(KEY, apiKey);
    await connect();
  }));
  $("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    apiKey = "";
    $("api-key").value = "";
    if (ws) { ws.onclose = null; ws.close(); }
    setConnection("Not connected");
  });
  $("create-form").addEventListener("submit", guarded(async (ev) => {
    ev.preventDefault();
    const name = $("new-session").value.trim();
    await api("POST", "/api/sessions", { name });
    $("new-session").value = "";
    await loadSessions();
    select(name);
  }));
  $("sessions").addEventListener("click", guarded(async (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (b) await sessionAction(b.dataset.session, b.dataset.action);
  }));
  $("code-form").addEventListener("submit", guarded(async (ev) => {
    ev.preventDefault();
    const r = await json("POST", `/api/${enc(selected)}/auth/request-code`, { phoneNumber: $("phone").value.trim() });
    $("pair-code").textContent = `Code: ${r.code}`;
  }));
  $("dead-refresh").addEventListener("click", guarded(loadDead));
  $("dead-replay-all").addEventListener("click", guarded(() => replay()));
  $("dead").addEventListener("click", guarded(async (ev) => {
    const b = ev.target.closest("button[data-replay]");
    if (b) await replay(b.dataset.replay);
  }));
  $("send-form").addEventListener("submit", guarded(async (ev) => {
    ev.preventDefault();
    const r = await json("POST", "/api/sendText", {
      session: $("send-session").value.trim(), chatId: $("send-chat").value.trim(), text: $("send-text").value,
    });
    $("send-result").textContent = `Sent${r && r.id ? `: ${typeof r.id === "string" ? r.id : r.id._serialized || ""}` : ""}`;
  }));
  $("filter-session").addEventListener("input", renderEvents);
  $("filter-event").addEventListener("input", renderEvents);
  $("events-clear").addEventListener("click", () => { events.length = 0; renderEvents(); });
  if (location.pathname.endsWith("/event-monitor")) $("event-monitor").scrollIntoView();
  guarded(connect)();
})();
