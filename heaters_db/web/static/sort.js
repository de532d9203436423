// The sorting page's keyboard loop. The server renders every screen (templates/_screen.html);
// this file only moves between screens and records choices.
//
// A choice is held here for config.undo_ms before it is POSTed, so `z` can take it back without
// leaving a row. A newer choice, leaving the page, or the timer sends the held one. The
// database's refusals come back as {"error": message} and stay on screen until dismissed.
//
// `x` then a digit marks that tile as clearly wrong (again: unmarks it). Only marked tiles are
// sent as rejected (hard negatives); the other tiles not chosen count as implicit negatives, so
// a second clip as right as the chosen one is not taught as "different".
(() => {
  "use strict";

  const config = JSON.parse(document.getElementById("config").textContent);
  const $ = (id) => document.getElementById(id);
  const MAX_RECENT = 50;

  const state = {
    mode: config.mode,
    screen: config.screen, // {mode, anchor, candidates: [{clip_id, key, position, source, distance}]}
    shownAt: performance.now(),
    pending: null, // {event, screen, html, timer}
    count: 0,
    recent: [], // anchors decided or skipped here, which the database may not know of yet
    heads: config.heads || {},
    loading: false,
    sequence: 0, // answers to older screen requests are dropped
    rejecting: false, // `x` pressed: the next digit marks a tile as clearly wrong
    rejected: new Set(), // clip ids marked clearly wrong on this screen
  };

  // -- messages ---------------------------------------------------------------------------------

  function showError(message) {
    $("error-text").textContent = message;
    $("error").hidden = false;
  }

  function showNotice(message) {
    $("notice-text").textContent = message;
    $("notice").hidden = false;
  }

  let toastTimer = null;
  function showToast(message, durationMs, countdown) {
    const bar = $("toast-bar");
    $("toast-text").textContent = message;
    $("toast").hidden = false;
    bar.style.transition = "none";
    bar.style.width = countdown ? "100%" : "0";
    if (countdown) {
      void bar.offsetWidth; // restart the transition
      bar.style.transition = `width ${durationMs}ms linear`;
      bar.style.width = "0";
    }
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { $("toast").hidden = true; }, durationMs + 400);
  }

  function percent(value) {
    return `${(100 * value).toFixed(0)}%`;
  }

  function showHead() {
    const head = state.heads[state.mode];
    const element = $("head");
    if (!head) {
      element.textContent = `${state.mode}: no active head (default embeddings)`;
      return;
    }
    const holdout = head.holdout || {};
    const baseline = head.baseline || {};
    const parts = [];
    for (const [name, label] of [["triplet_accuracy", "triplet accuracy"], ["screen_top1", "top-1"]]) {
      if (holdout[name] == null) continue;
      const before = baseline[name] != null ? ` (was ${percent(baseline[name])})` : "";
      parts.push(`${label} ${percent(holdout[name])}${before}`);
    }
    const metrics = parts.length ? `holdout ${parts.join(", ")}` : "no holdout metrics stored";
    element.textContent = `${state.mode} head v${head.version} · ${metrics}`;
    element.title = head.holdout_events != null
      ? `measured on ${head.holdout_events} held-out sorting events; activated ${head.activated_at}`
      : "the active projection head of this mode";
  }

  function showMode() {
    document.body.dataset.mode = state.mode;
    document.title = `heaters-db · sort ${state.mode}`;
    $("question").textContent = state.mode === "trick" ? "the same trick" : "the same spot";
    for (const button of document.querySelectorAll("button.mode")) {
      button.classList.toggle("active", button.dataset.mode === state.mode);
    }
    const url = new URL(window.location.href);
    url.searchParams.set("mode", state.mode);
    history.replaceState(null, "", url);
    showHead();
  }

  // -- screens ----------------------------------------------------------------------------------

  function setScreen(screen, html) {
    state.screen = screen;
    state.rejecting = false;
    state.rejected = new Set();
    $("screen").innerHTML = html;
    document.body.dataset.anchor = screen ? String(screen.anchor.clip_id) : "";
    state.shownAt = performance.now();
  }

  function remember(anchor) {
    state.recent = state.recent.filter((id) => id !== anchor).concat([anchor]).slice(-MAX_RECENT);
  }

  async function loadScreen() {
    const sequence = ++state.sequence;
    state.loading = true;
    document.body.classList.add("loading");
    const query = new URLSearchParams({ mode: state.mode, exclude: state.recent.join(",") });
    try {
      const response = await fetch(`/api/screen?${query}`, { cache: "no-store" });
      const body = await response.json();
      if (sequence !== state.sequence) return;
      if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
      setScreen(body.screen, body.html);
    } catch (error) {
      if (sequence === state.sequence) showError(`Could not load the next clip: ${error.message}`);
    } finally {
      if (sequence === state.sequence) {
        state.loading = false;
        document.body.classList.remove("loading");
      }
    }
  }

  // -- choices ----------------------------------------------------------------------------------

  async function commit(pending, keepalive = false) {
    clearTimeout(pending.timer);
    if (state.pending === pending) state.pending = null;
    try {
      const response = await fetch("/api/events", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(pending.event),
        keepalive,
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
      state.count += 1;
      $("count").textContent = String(state.count);
    } catch (error) {
      showError(`Choice for anchor clip ${pending.event.anchor} not saved: ${error.message}`);
    }
  }

  function toggleRejected(key) {
    state.rejecting = false;
    const tile = (state.screen?.candidates || []).find((candidate) => candidate.key === key);
    if (!tile) {
      showToast(`There is no tile ${key} on this screen`, 1500, false);
      return;
    }
    const marked = !state.rejected.has(tile.clip_id);
    if (marked) state.rejected.add(tile.clip_id);
    else state.rejected.delete(tile.clip_id);
    document.querySelector(`.tile[data-key="${key}"]`)?.classList.toggle("rejected", marked);
    showToast(marked ? `Tile ${key} marked clearly wrong` : `Tile ${key} unmarked`, 1200, false);
  }

  function choose(key) {
    const screen = state.screen;
    if (!screen || state.loading) return;
    if (state.rejecting && key !== 0) {
      toggleRejected(key);
      return;
    }
    state.rejecting = false;
    let selected = null;
    if (key !== 0) {
      const tile = screen.candidates.find((candidate) => candidate.key === key);
      if (!tile) {
        showToast(`There is no tile ${key} on this screen`, 1500, false);
        return;
      }
      selected = tile.clip_id;
    }
    if (state.pending) commit(state.pending); // only the latest choice can be undone
    const event = {
      mode: screen.mode,
      anchor: screen.anchor.clip_id,
      candidates: screen.candidates.map((tile) => tile.clip_id),
      selected,
      rejected: [...state.rejected].filter((clip) => clip !== selected),
      anchor_reason: screen.anchor_reason || null,
      session_id: config.session_id,
      response_time_ms: Math.round(performance.now() - state.shownAt),
      candidate_rankings: screen.candidates.map((tile) => ({
        clip_id: tile.clip_id,
        key: tile.key,
        position: tile.position,
        source: tile.source,
        distance: tile.distance,
      })),
    };
    const pending = { event, screen, html: $("screen").innerHTML };
    pending.timer = setTimeout(() => commit(pending), config.undo_ms);
    state.pending = pending;
    const what = key === 0 ? "none similar" : `tile ${key}`;
    showToast(`Chose ${what} — press z to undo`, config.undo_ms, true);
    remember(event.anchor);
    loadScreen();
  }

  function undo() {
    const pending = state.pending;
    if (!pending) {
      showToast(`Nothing to undo: choices are saved after ${config.undo_ms / 1000} s`, 2000, false);
      return;
    }
    clearTimeout(pending.timer);
    state.pending = null;
    state.sequence += 1; // the next screen, if still loading, must not replace this one
    state.loading = false;
    document.body.classList.remove("loading");
    state.mode = pending.screen.mode;
    showMode();
    setScreen(pending.screen, pending.html);
    showToast("Undone: choose again", 1500, false);
  }

  function skip() {
    if (!state.screen || state.loading) return;
    remember(state.screen.anchor.clip_id);
    loadScreen();
  }

  function switchMode(mode) {
    if (mode === state.mode) return;
    state.mode = mode;
    showMode();
    loadScreen();
  }

  // -- heads ------------------------------------------------------------------------------------

  async function pollHeads() {
    try {
      const response = await fetch("/api/status", { cache: "no-store" });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
      for (const [mode, head] of Object.entries(body.heads)) {
        const before = state.heads[mode];
        if (head && (!before || before.id !== head.id)) {
          const at = head.activated_at ? new Date(head.activated_at).toLocaleTimeString() : "now";
          showNotice(`New ${mode} head v${head.version} activated at ${at}: the next screens use it.`);
        }
      }
      state.heads = body.heads;
      showHead();
    } catch (error) {
      showError(`Could not read the active heads: ${error.message}`);
    }
  }

  // -- input ------------------------------------------------------------------------------------

  function toggleHelp(show) {
    $("help").hidden = show === undefined ? !$("help").hidden : !show;
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    const key = event.key;
    if (key === "?") toggleHelp();
    else if (key === "Escape") {
      if (!$("help").hidden) toggleHelp(false);
      else $("error").hidden = true;
    } else if (!$("help").hidden) return;
    else if (/^[0-9]$/.test(key)) choose(Number(key));
    else if (key.toLowerCase() === "x") {
      state.rejecting = true;
      showToast("Mark which tile as clearly wrong? (press its number)", 2000, false);
    }
    else if (key.toLowerCase() === "s") skip();
    else if (key.toLowerCase() === "z") undo();
    else if (key.toLowerCase() === "t") switchMode("trick");
    else if (key.toLowerCase() === "p") switchMode("spot");
    else return;
    event.preventDefault();
  });

  $("screen").addEventListener("click", (event) => {
    const tile = event.target.closest(".tile[data-key]");
    if (tile) choose(Number(tile.dataset.key));
  });
  for (const button of document.querySelectorAll("button.mode")) {
    button.addEventListener("click", () => switchMode(button.dataset.mode));
  }
  $("help-button").addEventListener("click", () => toggleHelp());
  $("help").addEventListener("click", (event) => { if (event.target === $("help")) toggleHelp(false); });
  $("error-close").addEventListener("click", () => { $("error").hidden = true; });
  $("notice-close").addEventListener("click", () => { $("notice").hidden = true; });
  // Closing the tab must not lose a held choice.
  window.addEventListener("pagehide", () => { if (state.pending) commit(state.pending, true); });

  document.body.dataset.anchor = state.screen ? String(state.screen.anchor.clip_id) : "";
  showMode();
  setInterval(pollHeads, config.poll_ms);
})();
