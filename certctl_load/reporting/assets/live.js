/* The web UI's live charts: polls ./timeline?since=N every second, appends the new rows, shows the
   run's state and verdict; a new run (another "run" id) starts the charts afresh.
   window.certctlPolls counts the answered polls. */
(function () {
  "use strict";

  const POLL_MS = 1000;
  const charts = CertctlCharts.mount();
  const verdict = document.getElementById("certctl-verdict");
  const state = document.getElementById("certctl-state");
  let run, since = 0;
  window.certctlPolls = 0;

  function show(body) {
    verdict.textContent = body.verdict.word;
    verdict.className = `verdict tone-${body.verdict.tone}`;
    verdict.title = body.verdict.text;
    state.textContent = `${body.state}; ${body.verdict.text}; ${charts.rows.length} s of figures`;
  }

  async function poll() {
    try {
      const asked = since;
      const response = await fetch(`./timeline?since=${asked}`, { cache: "no-store" });
      if (response.ok) {
        const body = await response.json();
        window.certctlPolls += 1;
        const fresh = body.run !== run;
        if (fresh) {
          run = body.run;
          charts.reset(body.marks);
        }
        if (fresh && asked !== 0) {
          since = 0; // a new run: its rows from its first second, at the next poll
        } else {
          charts.append(body.rows);
          since = body.next;
        }
        show(body);
      }
    } catch (error) {
      state.textContent = `the web UI does not answer (${error.message}); retrying`;
    }
    setTimeout(poll, POLL_MS);
  }

  poll();
})();
