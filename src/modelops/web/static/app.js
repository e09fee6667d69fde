// Small behaviours shared by every page. No inline scripts anywhere: the page's
// Content-Security-Policy allows scripts from this origin's files only.
"use strict";

const ModelOps = (() => {
  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // A state-changing fetch: the session cookie goes along (same origin), the CSRF token in a header.
  async function post(url) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrfToken(), "Accept": "application/json" },
    });
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) {
      const detail = body && body.detail ? body.detail : `HTTP ${response.status}`;
      throw new Error(detail);
    }
    return body;
  }

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } });
    if (response.status === 401) {
      window.location.assign("/ui/login?next=" + encodeURIComponent(window.location.pathname));
      throw new Error("signed out");
    }
    const body = await response.json();
    if (!response.ok) throw new Error(body && body.detail ? body.detail : `HTTP ${response.status}`);
    return body;
  }

  function badge(status) {
    const span = document.createElement("span");
    span.className = "badge st-" + status;
    span.textContent = status.replace(/_/g, " ");
    return span;
  }

  function utc(iso) {
    return iso ? iso.replace("T", " ").slice(0, 19) + " UTC" : "—";
  }

  return { csrfToken, post, getJSON, badge, utc };
})();

document.addEventListener("DOMContentLoaded", () => {
  // Confirm destructive actions.
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });

  // Filters apply as soon as a choice is made.
  document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });

  // One open row menu at a time; a click elsewhere closes it.
  const menus = Array.from(document.querySelectorAll("details.menu"));
  menus.forEach((menu) => {
    menu.addEventListener("toggle", () => {
      if (menu.open) menus.forEach((other) => { if (other !== menu) other.open = false; });
    });
  });
  document.addEventListener("click", (event) => {
    menus.forEach((menu) => { if (menu.open && !menu.contains(event.target)) menu.open = false; });
  });

  // Show the chosen files' names next to a file input.
  document.querySelectorAll("input[type=file][data-names]").forEach((input) => {
    const target = document.getElementById(input.getAttribute("data-names"));
    input.addEventListener("change", () => {
      if (!target) return;
      const names = Array.from(input.files).map((f) => f.webkitRelativePath || f.name);
      target.textContent = names.length > 3 ? `${names.length} files` : names.join(", ");
    });
  });

  // Toggle parts of a form by a select's value (e.g. schedule: once shows the time field).
  document.querySelectorAll("select[data-toggle]").forEach((select) => {
    const update = () => {
      document.querySelectorAll(`[data-show-when="${select.name}"]`).forEach((el) => {
        const wanted = el.getAttribute("data-show-values").split(" ");
        el.hidden = !wanted.includes(select.value);
      });
    };
    select.addEventListener("change", update);
    update();
  });

  // Live status cells on the jobs list while some job is active.
  const table = document.querySelector("table[data-live-jobs]");
  if (table) {
    const url = table.getAttribute("data-live-jobs");
    const refresh = async () => {
      const rows = Array.from(table.querySelectorAll("tr[data-active]"));
      if (!rows.length) return;
      const ids = rows.map((row) => row.getAttribute("data-job-id")).join(",");
      try {
        const body = await ModelOps.getJSON(`${url}?ids=${encodeURIComponent(ids)}`);
        body.jobs.forEach((job) => {
          const row = table.querySelector(`tr[data-job-id="${job.id}"]`);
          if (!row) return;
          const cell = row.querySelector(".status-cell");
          cell.replaceChildren(ModelOps.badge(job.status));
          if (job.terminal) {
            row.removeAttribute("data-active");
            row.querySelectorAll("form[action$='/stop?back=list']").forEach((form) => form.remove());
          }
        });
      } catch (_) { /* try again on the next tick */ }
      window.setTimeout(refresh, 2000);
    };
    window.setTimeout(refresh, 2000);
  }
});
