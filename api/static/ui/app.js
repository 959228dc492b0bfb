// The dashboard: a list of the key's team's backfills and a detail view, both refreshed by
// polling the REST API. Everything shown comes from /v1 with the pasted key; data goes into
// the page as text (never as HTML), and the page runs under a CSP without inline code.
"use strict";

(() => {
  const KEY_STORAGE = "backfill.key";
  const POLL_MS = 2000;
  const RUNS_PER_PAGE = 50;
  const ACTIONS = {
    // Which buttons a backfill in a state offers; the server checks again.
    draft: ["cancel"],
    created: ["pause", "cancel"],
    scheduled: ["pause", "cancel"],
    running: ["pause", "cancel"],
    paused: ["resume", "cancel"],
    failed: ["retry", "cancel"],
    completed: [],
    cancelled: [],
  };

  const $ = (id) => document.getElementById(id);
  const state = {
    key: sessionStorage.getItem(KEY_STORAGE),
    me: null,
    timer: null,
    listAfter: [null], // cursors of the pages shown: the list grows with "Older backfills"
    runsAfter: [null], // cursors of the run pages visited, for "First page"
    runsNext: null,
    targets: new Map(), // target id -> name, for rows whose backfill has no name
  };

  // ------------------------------------------------------------------ API

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
      this.status = status;
    }
  }

  async function api(method, path) {
    const response = await fetch(path, {
      method,
      headers: { Authorization: `Bearer ${state.key}`, Accept: "application/json" },
      cache: "no-store",
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  // ------------------------------------------------------------------ formatting

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (name === "class") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const s = Math.round(seconds);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
    const h = Math.floor(s / 3600);
    return h < 48 ? `${h}h ${Math.floor((s % 3600) / 60)}m` : `${Math.floor(h / 24)}d ${h % 24}h`;
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "—";
  }

  function rate(progress) {
    const parts = [];
    if (progress.rows_per_second !== null) parts.push(`${number.format(progress.rows_per_second)} rows/s`);
    if (progress.runs_per_minute !== null) parts.push(`${number.format(progress.runs_per_minute)} runs/min`);
    return parts.length ? parts.join(" · ") : "—";
  }

  function stateBadge(value) {
    return el("span", { class: `state state-${value}`, dataset: { state: value } }, value);
  }

  function bar(backfill) {
    const fraction = backfill.progress.fraction;
    const classes = ["bar"];
    if (fraction === null) classes.push("unknown");
    if (backfill.state === "completed") classes.push("done");
    if (backfill.state === "failed") classes.push("bad");
    if (backfill.state === "cancelled") classes.push("stopped");
    const fill = el("span", { class: "fill" });
    if (fraction !== null) fill.style.width = `${(fraction * 100).toFixed(2)}%`;
    const label = fraction === null ? "planning…" : `${(fraction * 100).toFixed(1)}%`;
    const attrs = { class: classes.join(" "), role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "1" };
    if (fraction !== null) attrs["aria-valuenow"] = String(fraction);
    return el("div", attrs, fill, el("span", { class: "label" }, label));
  }

  function counts(backfill) {
    if (backfill.rows_initial_count !== null) {
      return `${number.format(backfill.rows_processed_count)} of ${number.format(backfill.rows_initial_count)} rows`;
    }
    return `${backfill.runs_completed} of ${backfill.runs_total} runs`;
  }

  function range(item) {
    if (item.window_start) return `${when(item.window_start)} → ${when(item.window_end)}`;
    const lower = item.lower_key ? item.lower_key.join(", ") : "start";
    const upper = item.upper_key ? item.upper_key.join(", ") : "end";
    return `(${lower}] … [${upper}]`;
  }

  function canWrite() {
    return Boolean(state.me && state.me.scopes.includes("write"));
  }

  function actionButtons(backfill) {
    if (!canWrite()) return [];
    return (ACTIONS[backfill.state] || []).map((action) =>
      el("button", {
        type: "button",
        dataset: { action, backfill: String(backfill.id) },
        onclick: (event) => {
          event.stopPropagation();
          act(action, backfill.id, event.currentTarget);
        },
      }, action),
    );
  }

  async function act(action, id, button) {
    if (action === "cancel" && !window.confirm(`Cancel backfill ${id}? This cannot be undone.`)) return;
    button.disabled = true;
    try {
      await api("POST", `/v1/backfills/${id}/${action}`);
      say("");
    } catch (error) {
      say(`${action} failed: ${error.message}`);
    }
    await refresh();
  }

  function say(text) {
    $("message").textContent = text;
  }

  // ------------------------------------------------------------------ views

  function show(id) {
    for (const view of ["sign-in", "list-view", "detail-view"]) $(view).hidden = view !== id;
  }

  async function learnTargets(backfills) {
    if (backfills.every((b) => state.targets.has(b.target_id))) return;
    let after = null;
    do {
      const query = new URLSearchParams({ limit: "500" });
      if (after !== null) query.set("after", String(after));
      const page = await api("GET", `/v1/targets?${query}`);
      for (const t of page.data) state.targets.set(t.id, t.name);
      after = page.next_after;
    } while (after !== null);
  }

  function title(b) {
    return b.name || state.targets.get(b.target_id) || `target ${b.target_id}`;
  }

  async function renderList() {
    const filter = $("state-filter").value;
    const pages = [];
    let next = null;
    for (const after of state.listAfter) {
      const query = new URLSearchParams({ limit: "50" });
      if (after !== null) query.set("after", String(after));
      if (filter) query.set("state", filter);
      const page = await api("GET", `/v1/backfills?${query}`);
      pages.push(...page.data);
      next = page.next_after;
    }
    await learnTargets(pages);
    const rows = pages.map((b) =>
      el("tr", { class: "row", dataset: { backfillId: String(b.id), state: b.state }, onclick: () => { location.hash = `#/backfills/${b.id}`; } },
        el("td", { class: "num" }, b.id),
        el("td", {}, title(b), el("div", { class: "muted" }, b.kind === "table" ? b.table : `${b.interval_units} ${b.interval_type}`)),
        el("td", { class: "state-cell" }, stateBadge(b.state)),
        el("td", {}, bar(b), el("div", { class: "muted" }, counts(b))),
        el("td", { class: "num rate" }, rate(b.progress)),
        el("td", { class: "num eta" }, duration(b.progress.eta_seconds)),
        el("td", { class: "num" }, b.runs_failed ? el("span", { class: "error" }, `${b.runs_failed} failed`) : "—"),
        el("td", {}, el("div", { class: "actions" }, ...actionButtons(b))),
      ),
    );
    $("backfill-rows").replaceChildren(...rows);
    $("empty").hidden = rows.length > 0;
    $("more").hidden = next === null;
    $("more").dataset.next = next === null ? "" : String(next);
  }

  async function renderDetail(id) {
    const b = await api("GET", `/v1/backfills/${id}`);
    await learnTargets([b]);
    $("detail-title").replaceChildren(`Backfill ${b.id} `, el("span", { class: "muted" }, title(b)), " ", stateBadge(b.state));
    $("detail-progress").replaceChildren(bar(b));
    const facts = [
      ["kind", b.kind === "table" ? `table ${b.table}` : `date range, ${b.interval_units} ${b.interval_type}`],
      ["done", counts(b)],
      ["runs", `${b.runs_total} planned · ${b.runs_completed} completed · ${b.runs_failed} failed · ${b.runs_cancelled} cancelled`],
      ["rate", `${rate(b.progress)} (last ${b.progress.window_seconds}s)`],
      ["ETA", b.progress.eta ? `${duration(b.progress.eta_seconds)} (${when(b.progress.eta)})` : "—"],
      ["created", when(b.created_at)],
      ["started", when(b.started_at)],
      ["ended", when(b.completed_at || b.failed_at || b.cancelled_at)],
    ];
    $("detail-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { dataset: { fact: k } }, v)]));
    $("detail-actions").replaceChildren(...actionButtons(b));
    const errors = b.error_report.map((e) =>
      el("tr", {}, el("td", { class: "num" }, e.run_id), el("td", {}, range(e)), el("td", { class: "num" }, e.attempt), el("td", { class: "err" }, e.error)),
    );
    $("error-rows").replaceChildren(...errors);
    $("errors").hidden = errors.length === 0;
    $("errors-empty").hidden = errors.length > 0;

    const query = new URLSearchParams({ limit: String(RUNS_PER_PAGE) });
    const after = state.runsAfter[state.runsAfter.length - 1];
    if (after !== null) query.set("after", String(after));
    const filter = $("run-state-filter").value;
    if (filter) query.set("state", filter);
    const runs = await api("GET", `/v1/backfills/${id}/runs?${query}`);
    $("run-rows").replaceChildren(...runs.data.map((r) =>
      el("tr", { dataset: { runSeq: String(r.seq) } },
        el("td", { class: "num" }, r.seq),
        el("td", {}, stateBadge(r.state)),
        el("td", {}, range(r)),
        el("td", { class: "num" }, number.format(r.rows_processed)),
        el("td", { class: "num" }, r.attempt),
        el("td", { class: "num" }, when(r.started_at)),
        el("td", { class: "num" }, when(r.finished_at)),
        el("td", { class: "err" }, r.error || ""),
      ),
    ));
    state.runsNext = runs.next_after;
    $("runs-next").disabled = runs.next_after === null;
    $("runs-first").disabled = state.runsAfter.length === 1;
    $("runs-page").textContent = `page ${state.runsAfter.length}`;
  }

  function route() {
    const match = /^#\/backfills\/(\d+)$/.exec(location.hash);
    return match ? { view: "detail", id: Number(match[1]) } : { view: "list" };
  }

  async function refresh() {
    clearTimeout(state.timer);
    if (!state.key) return;
    const where = route();
    try {
      if (where.view === "detail") {
        show("detail-view");
        await renderDetail(where.id);
      } else {
        show("list-view");
        await renderList();
      }
      $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
      say("");
    } catch (error) {
      if (error.status === 401) {
        signOut("That key is not valid (any more). Paste another.");
        return;
      }
      say(error.status === 404 ? "No such backfill (or not your team's)." : `Could not load: ${error.message}`);
    }
    state.timer = setTimeout(refresh, POLL_MS);
  }

  // ------------------------------------------------------------------ key

  async function signIn(key) {
    state.key = key;
    try {
      state.me = await api("GET", "/v1/whoami");
    } catch (error) {
      state.key = null;
      $("key-error").textContent = error.status === 401 ? "That key is not valid." : error.message;
      return false;
    }
    sessionStorage.setItem(KEY_STORAGE, key);
    $("who-text").textContent = `team ${state.me.team_id} · key ${state.me.prefix}… · ${state.me.scopes.join(", ")}`;
    $("who").hidden = false;
    $("key-error").textContent = "";
    return true;
  }

  function signOut(reason) {
    clearTimeout(state.timer);
    sessionStorage.removeItem(KEY_STORAGE);
    state.key = null;
    state.me = null;
    state.targets.clear();
    $("who").hidden = true;
    $("key-input").value = "";
    $("key-error").textContent = reason || "";
    say("");
    show("sign-in");
  }

  // ------------------------------------------------------------------ wiring

  function wire() {
    $("key-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      if (await signIn($("key-input").value.trim())) refresh();
    });
    $("sign-out").addEventListener("click", () => signOut());
    $("state-filter").addEventListener("change", () => { state.listAfter = [null]; refresh(); });
    $("more").addEventListener("click", () => {
      state.listAfter.push(Number($("more").dataset.next));
      refresh();
    });
    $("run-state-filter").addEventListener("change", () => { state.runsAfter = [null]; refresh(); });
    $("runs-next").addEventListener("click", () => {
      if (state.runsNext !== null) state.runsAfter.push(state.runsNext);
      refresh();
    });
    $("runs-first").addEventListener("click", () => { state.runsAfter = [null]; refresh(); });
    window.addEventListener("hashchange", () => { state.runsAfter = [null]; refresh(); });
  }

  async function start() {
    wire();
    if (state.key && (await signIn(state.key))) {
      refresh();
    } else {
      signOut();
    }
  }

  start();
})();
