// linekeeper web page: small, dependency-free. The status page follows /api/events (server-sent events) and
// refreshes its figures from /ui/status.json; the diagnostics page follows /diagnostics/stream.
"use strict";
(function () {
  const sel = document.getElementById("lang-select");
  if (sel) sel.addEventListener("change", () => sel.form.submit());

  const lines = document.getElementById("lines");
  if (lines) status(lines);
  const raw = document.getElementById("raw");
  if (raw) diagnostics(raw);

  function status(lines) {
    const live = document.getElementById("live");
    const labels = JSON.parse(live.dataset.labels || "{}");
    let ticking = null, pending = false;
    function elapsed() {
      let ringing = 0;
      lines.querySelectorAll(".line").forEach((el) => {
        const e = el.querySelector(".elapsed");
        if (el.dataset.state === "ringing") {
          ringing++;
          const s = Math.max(0, Math.round((Date.now() - Date.parse(el.dataset.since)) / 1000));
          e.textContent = s + " s";
        } else e.textContent = "";
      });
      // A timer only while something rings.
      if (ringing && !ticking) ticking = setInterval(elapsed, 1000);
      if (!ringing && ticking) { clearInterval(ticking); ticking = null; }
    }
    function render(st) {
      st.lines.forEach((l) => {
        let el = lines.querySelector('[data-line="' + CSS.escape(l.line) + '"]');
        if (!el) return;
        el.dataset.state = l.state;
        el.dataset.since = l.since;
        el.querySelector(".state").textContent = l.label;
        el.querySelector(".caller").textContent = l.state === "idle" || l.state === "down" ? "" : [l.number, l.name].filter(Boolean).join(" ");
        el.querySelector(".reason").textContent = l.reason || "";
      });
      const q = st.queue;
      document.querySelectorAll("#queue [data-k]").forEach((el) => {
        const v = q[el.dataset.k];
        el.textContent = v === null || v === undefined ? "–" : String(v);
      });
      const open = document.getElementById("tasks-open");
      if (open) open.textContent = q.open_tasks;
      const agents = document.querySelector("#agents tbody");
      if (agents) st.agents.forEach((a) => {
        const row = agents.querySelector('[data-agent="' + CSS.escape(a.agent) + '"] .state');
        if (row) row.textContent = a.label;
      });
      elapsed();
    }
    let again = false;
    async function refresh() {
      // One fetch at a time; an event that comes during a fetch asks for one more after it.
      if (pending) { again = true; return; }
      pending = true;
      try {
        do {
          again = false;
          const r = await fetch("/ui/status.json", { credentials: "same-origin", cache: "no-store" });
          if (r.status === 401 || r.redirected) { location.href = "/login"; return; }
          render(await r.json());
        } while (again);
      } catch (e) { /* the next event retries */ }
      finally { pending = false; }
    }
    const es = new EventSource("/api/events");
    es.onopen = () => { live.textContent = labels.live; live.classList.add("on"); refresh(); };
    es.onerror = () => { live.textContent = labels.offline; live.classList.remove("on"); };
    ["call.ringing", "call.answered", "call.ended", "task.created", "task.updated", "task.overdue",
     "task.escalated", "task.done", "task.cancelled", "agent.available", "agent.away", "agent.on_call",
     "agent.signed_out", "alert.line_down", "alert.line_up", "alert.long_ringing", "alert.vip_ringing",
     "alert.task_overdue", "alert.no_agent"].forEach((t) =>
      es.addEventListener(t, refresh));
    es.onmessage = refresh;
    elapsed();
  }

  function diagnostics(raw) {
    const es = new EventSource("/diagnostics/stream");
    es.addEventListener("raw", (ev) => {
      raw.append(ev.data + "\n");
      const extra = raw.textContent.split("\n").length - 500;
      if (extra > 0) raw.textContent = raw.textContent.split("\n").slice(extra).join("\n");
      raw.scrollTop = raw.scrollHeight;
    });
  }
})();
