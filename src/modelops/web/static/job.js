// The job page: follow the logs live, refresh the events timeline, show an event's details on
// demand, and stop the job. Every piece of job output is inserted with textContent, never as HTML.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("job");
  if (!root) return;
  const logsUrl = root.getAttribute("data-logs-url");
  const eventsUrl = root.getAttribute("data-events-url");
  const stopUrl = root.getAttribute("data-stop-url");
  const log = document.getElementById("log");
  const level = document.getElementById("log-level");
  const follow = document.getElementById("log-follow");
  const state = document.getElementById("log-state");
  const count = document.getElementById("log-count");
  const statusBox = document.getElementById("job-status");
  const errorBox = document.getElementById("job-error");
  const stopForm = document.getElementById("stop-form");
  const events = document.getElementById("events");

  const MAX_LINES = 20000;
  let trimmed = false;
  let after = 0;
  let lines = 0;
  let errors = 0;
  let status = root.getAttribute("data-status");
  let eventCount = events ? events.children.length : 0;

  function lineElement(line) {
    const row = document.createElement("div");
    row.className = `line lvl-${line.level} stream-${line.stream}`;
    row.setAttribute("data-seq", String(line.seq));
    const seq = document.createElement("span");
    seq.className = "ln";
    seq.textContent = String(line.seq);
    const time = document.createElement("span");
    time.className = "ts";
    time.textContent = line.at ? line.at.slice(11, 19) : "";
    time.title = ModelOps.utc(line.at);
    const lvl = document.createElement("span");
    lvl.className = "lv";
    lvl.textContent = line.level;
    const text = document.createElement("span");
    text.className = "tx";
    text.textContent = line.text;
    row.append(seq, time, lvl, text);
    return row;
  }

  function showState(job) {
    if (job.status !== status) {
      status = job.status;
      root.setAttribute("data-status", status);
      statusBox.replaceChildren(ModelOps.badge(status));
    }
    document.getElementById("job-started").textContent = job.started_at;
    document.getElementById("job-ended").textContent = job.ended_at;
    document.getElementById("job-duration").textContent = job.duration;
    if (job.error) {
      errorBox.textContent = job.error;
      errorBox.hidden = false;
    }
    if (stopForm) stopForm.hidden = job.terminal || job.status === "cancelling";
  }

  function eventItem(event) {
    const item = document.createElement("li");
    item.setAttribute("data-event-id", String(event.id));
    const main = document.createElement("div");
    main.className = "tl-main";
    const time = document.createElement("span");
    time.className = "tl-time";
    time.textContent = event.at_text;
    const change = document.createElement("span");
    change.className = "tl-change";
    if (event.from_status) change.append(event.from_status.replace(/_/g, " ") + " → ");
    const to = document.createElement("strong");
    to.textContent = event.to_status.replace(/_/g, " ");
    change.append(to);
    const actor = document.createElement("span");
    actor.className = "tl-actor";
    actor.textContent = "by " + event.actor;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = "View details";
    button.setAttribute("data-event-details", `${eventsUrl}/${event.id}`);
    main.append(time, change, actor, button);
    const detail = document.createElement("pre");
    detail.className = "event-detail";
    detail.hidden = true;
    item.append(main, detail);
    return item;
  }

  async function refreshEvents() {
    const body = await ModelOps.getJSON(eventsUrl);
    if (body.events.length === eventCount) return;
    const open = new Set(Array.from(events.querySelectorAll("pre.event-detail:not([hidden])"))
      .map((pre) => pre.parentElement.getAttribute("data-event-id")));
    events.replaceChildren(...body.events.map(eventItem));
    eventCount = body.events.length;
    open.forEach((id) => {
      const button = events.querySelector(`li[data-event-id="${id}"] button[data-event-details]`);
      if (button) button.click();
    });
  }

  async function poll() {
    let body;
    try {
      body = await ModelOps.getJSON(`${logsUrl}?after=${after}`);
    } catch (error) {
      state.textContent = `cannot load logs: ${error.message}; retrying`;
      window.setTimeout(poll, 3000);
      return;
    }
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    const fragment = document.createDocumentFragment();
    body.lines.forEach((line) => {
      fragment.append(lineElement(line));
      after = line.seq;
      lines += 1;
      if (line.level === "error") errors += 1;
    });
    log.append(fragment);
    // A page holds the newest lines only; the API serves the whole log (GET /api/v1/jobs/{id}/logs).
    let dropped = 0;
    while (log.childElementCount > MAX_LINES) {
      log.firstElementChild.remove();
      dropped += 1;
    }
    if (dropped) trimmed = true;
    if (body.lines.length && follow.checked && atBottom) log.scrollTop = log.scrollHeight;
    count.textContent = `${lines} line${lines === 1 ? "" : "s"}` + (errors ? `, ${errors} error${errors === 1 ? "" : "s"}` : "")
      + (trimmed ? ` (showing the last ${MAX_LINES})` : "");
    const changed = body.job.status !== status;
    showState(body.job);
    if (changed || body.job.terminal) {
      try { await refreshEvents(); } catch (_) { /* next tick */ }
    }
    if (body.more) {
      window.setTimeout(poll, 0);
    } else if (body.job.terminal) {
      state.textContent = `ended: ${body.job.status.replace(/_/g, " ")}`;
      root.setAttribute("data-terminal", "true");
    } else {
      state.textContent = "following live…";
      window.setTimeout(poll, 1000);
    }
  }

  level.addEventListener("change", () => { log.setAttribute("data-min-level", level.value); });
  follow.addEventListener("change", () => { if (follow.checked) log.scrollTop = log.scrollHeight; });

  events.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-event-details]");
    if (!button) return;
    const pre = button.closest("li").querySelector("pre.event-detail");
    if (!pre.hidden) {
      pre.hidden = true;
      button.textContent = "View details";
      return;
    }
    try {
      const detail = await ModelOps.getJSON(button.getAttribute("data-event-details"));
      pre.textContent = JSON.stringify(detail, null, 2);
    } catch (error) {
      pre.textContent = `cannot load the event: ${error.message}`;
    }
    pre.hidden = false;
    button.textContent = "Hide details";
  });

  if (stopForm) {
    stopForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = stopForm.querySelector("button");
      button.disabled = true;
      try {
        const body = await ModelOps.post(stopUrl);
        showState(body.job);
        await refreshEvents();
      } catch (error) {
        errorBox.textContent = `Stop failed: ${error.message}`;
        errorBox.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
  }

  poll();
});
