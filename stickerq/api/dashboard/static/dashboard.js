// The dashboard's only script: poll the board fragment, send the buttons' forms.
// No framework: the server renders (and escapes) every value; this swaps HTML it sent.
"use strict";

(function () {
  const POLL_MS = 1000;
  const board = document.getElementById("board");
  const flash = document.getElementById("flash");
  const live = document.getElementById("live");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const FLASH_MS = 10000;
  let busy = false;
  let flashTimer = null;

  function toLogin() { window.location.assign("/login"); }

  function show(text, kind) {
    flash.textContent = text;  // text, never HTML
    flash.className = kind;
    flash.hidden = false;
    window.clearTimeout(flashTimer);
    flashTimer = window.setTimeout(function () { flash.hidden = true; }, FLASH_MS);
  }

  async function refresh() {
    if (busy || document.hidden) return;  // a background tab costs the server nothing
    busy = true;
    try {
      const answer = await fetch("/dashboard/board", {
        headers: { Accept: "text/html" }, cache: "no-store", credentials: "same-origin",
      });
      if (answer.status === 401) return toLogin();
      if (!answer.ok) throw new Error("HTTP " + answer.status);
      board.innerHTML = await answer.text();
      live.classList.remove("stale");
      live.textContent = "live";
    } catch (err) {
      live.classList.add("stale");
      live.textContent = "offline";
    } finally {
      busy = false;
    }
  }

  async function post(url, body) {
    const answer = await fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
    });
    if (answer.status === 401) { toLogin(); return null; }
    let data = {};
    try { data = await answer.json(); } catch (err) { /* not JSON: use the status */ }
    return { ok: answer.ok, data: data, status: answer.status };
  }

  document.addEventListener("submit", async function (event) {
    const form = event.target;
    if (!form.classList.contains("act")) return;
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    for (const button of form.querySelectorAll("button")) button.disabled = true;
    try {
      const result = await post(form.action, new FormData(form));
      if (result === null) return;
      const data = result.data;
      if (result.ok) {
        const warnings = (data.warnings || []).join(" ");
        show(data.message + (warnings ? " (" + warnings + ")" : ""), warnings ? "warn" : "ok");
      } else {
        show((data.title || "HTTP " + result.status) + (data.detail ? ": " + data.detail : ""), "error");
      }
    } catch (err) {
      show("could not reach the server: " + err.message, "error");
    }
    await refresh();
  });

  document.getElementById("logout").addEventListener("click", async function () {
    await post("/logout", null);
    toLogin();
  });

  window.setInterval(refresh, POLL_MS);
})();
