// The live view: polls the bridge's board every second and updates the page in place (no reload).
// It talks to nobody but the bridge; the session came with the page and is renewed by every answer.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("live-config").textContent);
  const POLL_MS = 1000;
  const LOST_AFTER_MS = 3500; // three polls without an answer: say so
  const REQUEST_TIMEOUT_MS = 5000;
  let session = config.session;
  let lastOk = 0;
  let lastBoard = null;

  const FIGURES = [
    ["callers_waiting", "Callers waiting", (line) => String(line.callers_waiting)],
    ["longest_wait", "Longest wait", (line) => duration(line.longest_wait)],
    ["agents_available", "Agents available", (line) => String(line.agents_available)],
    ["answered", "Answered today", (line) => String(line.today.answered)],
    ["missed", "Missed today", (line) => String(line.today.missed)],
    ["service_level", "Service level", (line) => percent(line.today.service_level)],
  ];
  const DAY = [
    ["calls", "Calls today", (t) => String(t.calls)],
    ["abandoned", "Abandoned in queue", (t) => String(t.abandoned)],
    ["voicemails", "Voicemails", (t) => String(t.voicemails)],
    ["after_hours", "After hours", (t) => String(t.after_hours)],
    ["average_wait", "Average wait", (t) => duration(t.average_wait)],
    ["longest_today", "Longest wait today", (t) => duration(t.longest_wait)],
  ];
  const STATUS_WORDS = {available: "Available", away: "Away", offline: "Offline", ringing: "Ringing",
    on_call: "On a call", wrap_up: "Wrap-up"};

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.max(0, Math.round(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
  }

  function percent(share) {
    return share === null || share === undefined ? "–" : Math.round(share * 100) + "%";
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function slug(key) {
    return String(key).replace(/[^A-Za-z0-9_-]/g, "_");
  }

  // One figure: a named group holding its value, so each has an accessible name ("Callers waiting").
  function figure(id, name) {
    const box = el("div", {class: "figure", role: "group", "aria-labelledby": id + "-name"});
    box.append(el("span", {class: "name", id: id + "-name"}, name), el("span", {class: "value", id: id}));
    return box;
  }

  function lineSection(line) {
    const id = "line-" + slug(line.key);
    const section = el("section", {class: "line", id: id, "aria-labelledby": id + "-title"});
    section.append(el("h2", {id: id + "-title"}, line.name));
    const main = el("div", {class: "figures main"});
    for (const [key, name] of FIGURES) main.append(figure(id + "-" + key, name));
    const day = el("div", {class: "figures day"});
    for (const [key, name] of DAY) day.append(figure(id + "-" + key, name));
    const queue = el("ul", {class: "queue", id: id + "-queue", "aria-label": "Callers waiting on " + line.name});
    const chart = el("div", {class: "chart", id: id + "-chart", role: "img"});
    section.append(main, queue, day, chart, el("p", {class: "day-note", id: id + "-note"}));
    return section;
  }

  function renderLine(line) {
    const id = "line-" + slug(line.key);
    let section = document.getElementById(id);
    if (!section) {
      section = lineSection(line);
      document.getElementById("lines").append(section);
    }
    for (const [key, , value] of FIGURES) setText(document.getElementById(id + "-" + key), value(line));
    for (const [key, , value] of DAY) setText(document.getElementById(id + "-" + key), value(line.today));
    section.dataset.waiting = String(line.callers_waiting);
    const queue = document.getElementById(id + "-queue");
    const items = line.waiting.map((caller) => {
      const state = caller.state === "ringing" ? " (ringing an agent)" : "";
      return caller.position + ". " + caller.caller + " waiting " + duration(caller.wait) + state;
    });
    if (!items.length) items.push("Nobody is waiting");
    const old = Array.from(queue.children).map((item) => item.textContent);
    if (old.join("\n") !== items.join("\n")) {
      queue.replaceChildren(...items.map((text) => el("li", {}, text)));
    }
    renderChart(document.getElementById(id + "-chart"), line);
    setText(document.getElementById(id + "-note"),
      "Day " + line.day + " (" + line.timezone + "); service level: answered within " + config.slSeconds + " s");
  }

  function renderChart(chart, line) {
    const today = line.per_hour.today, before = line.per_hour.last_week;
    const top = Math.max(1, ...today, ...before);
    const words = today.map((n, hour) => hour + ":00 " + n + " (" + before[hour] + " on " + line.per_hour.last_week_day + ")");
    chart.setAttribute("aria-label", "Calls per hour today beside the same day last week: " + words.join(", "));
    const key = JSON.stringify([today, before]);
    if (chart.dataset.key === key) return;
    chart.dataset.key = key;
    const hours = today.map((n, hour) => {
      const group = el("div", {class: "hour", title: words[hour]});
      const a = el("span", {class: "bar today"});
      a.style.height = (100 * n / top) + "%";
      const b = el("span", {class: "bar last-week"});
      b.style.height = (100 * before[hour] / top) + "%";
      group.append(a, b, el("span", {class: "tick", "aria-hidden": "true"}, hour % 6 === 0 ? String(hour) : ""));
      return group;
    });
    chart.replaceChildren(...hours);
  }

  function renderAgents(agents, lineNames) {
    const body = document.querySelector("#agents tbody");
    const seen = new Set();
    for (const agent of agents) {
      const id = "agent-" + slug(agent.identity);
      seen.add(id);
      let row = document.getElementById(id);
      if (!row) {
        row = agentRow(agent, id);
        body.append(row);
      }
      const status = STATUS_WORDS[agent.status] || agent.status;
      setText(row.querySelector(".status"), status);
      row.dataset.status = agent.status;
      setText(row.querySelector(".for"), duration(agent.seconds));
      const on = agent.on ? [agent.on.line, agent.on.caller].filter(Boolean).join(", ") || STATUS_WORDS[agent.on.state] : "–";
      setText(row.querySelector(".on"), on);
      setText(row.querySelector(".calls"), String(agent.calls_today));
      // With several lines, which ones the agent takes calls for.
      const serves = lineNames.size > 1 ? agent.lines.map((key) => lineNames.get(key) || key).join(", ") : "";
      setText(row.querySelector(".serves"), serves);
      const select = row.querySelector("select");
      if (document.activeElement !== select && !select.dataset.pending) select.value = agent.chosen;
    }
    for (const row of Array.from(body.children)) if (!seen.has(row.id)) row.remove();
  }

  function agentRow(agent, id) {
    const row = el("tr", {id: id});
    const who = el("th", {scope: "row", class: "who"}, agent.name);
    who.append(el("small", {class: "serves"}));
    row.append(who, el("td", {class: "status"}),
      el("td", {class: "for"}), el("td", {class: "on"}), el("td", {class: "calls"}));
    const cell = el("td");
    const select = el("select", {"aria-label": "Set status of " + agent.name});
    for (const value of ["available", "away", "offline"]) select.append(el("option", {value: value}, STATUS_WORDS[value]));
    select.value = agent.chosen;
    select.addEventListener("change", () => setStatus(agent.identity, select));
    cell.append(select);
    row.append(cell);
    return row;
  }

  function renderCallbacks(callbacks) {
    const box = document.getElementById("callbacks");
    if (!callbacks) { box.hidden = true; return; }
    box.hidden = false;
    const list = document.getElementById("callback-list");
    list.replaceChildren(...(callbacks.length ? callbacks.map((callback) => {
      const item = el("li", {}, callback.caller + " on " + callback.line + " ");
      const button = el("button", {type: "button", "aria-label": "Cancel the callback to " + callback.caller}, "Cancel");
      button.addEventListener("click", () => cancelCallback(callback.id, button));
      item.append(button);
      return item;
    }) : [el("li", {}, "No callbacks pending")]));
  }

  async function call(method, path, body) {
    // A request the network swallows must not stop the polling: give up on it after a few seconds.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
    let response;
    try {
      response = await fetch(path, {
        method: method,
        headers: Object.assign({Authorization: "Bearer " + session}, body ? {"Content-Type": "application/json"} : {}),
        body: body ? JSON.stringify(body) : undefined,
        cache: "no-store",
        signal: abort.signal,
      });
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      throw new Error(problem.error || problem.reason || response.statusText || String(response.status));
    }
    return response.json();
  }

  function showError(text) {
    const error = document.getElementById("error");
    error.textContent = text || "";
    error.hidden = !text;
  }

  async function setStatus(identity, select) {
    select.dataset.pending = "1";
    try {
      await call("POST", "/live/agents/status", {agent: identity, status: select.value});
      showError("");
    } catch (err) {
      showError("The status could not be set: " + err.message);
    } finally {
      delete select.dataset.pending;
    }
  }

  async function cancelCallback(id, button) {
    button.disabled = true;
    try {
      await call("POST", "/live/callbacks/cancel", {id: id});
      showError("");
    } catch (err) {
      showError("The callback could not be cancelled: " + err.message);
      button.disabled = false;
    }
  }

  function connection() {
    const node = document.getElementById("connection");
    const lost = Date.now() - lastOk > LOST_AFTER_MS;
    document.body.dataset.connection = lastOk === 0 ? (lost ? "lost" : "connecting") : (lost ? "lost" : "live");
    if (lost) {
      setText(node, "Connection lost: the figures are from " + (lastBoard ? new Date(lastBoard.at).toLocaleTimeString() : "nowhere yet") + "; retrying…");
    } else if (lastBoard) {
      setText(node, "Live");
    }
  }

  async function poll() {
    try {
      const made = await call("GET", "/live/board");
      session = made.session;
      config.slSeconds = made.service_level_seconds;
      lastBoard = made;
      lastOk = Date.now();
      for (const line of made.lines) renderLine(line);
      renderAgents(made.agents, new Map(made.lines.map((line) => [line.key, line.name])));
      renderCallbacks(made.callbacks);
    } catch (err) {
      if (/session/.test(err.message)) showError("Your session has ended: reload Zendesk to open the live view again.");
    }
    connection();
    setTimeout(poll, POLL_MS);
  }

  setInterval(connection, 1000);
  poll();
})();
