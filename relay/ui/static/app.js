// relay dashboard: the only script. It refreshes a delivery's trace while QA watches it
// fill (every 5 s, only while the tab is visible), and nothing else. Same-origin only.
"use strict";

(function () {
  const trace = document.getElementById("trace");
  const toggle = document.getElementById("auto-refresh");
  if (!trace || !toggle) {
    return;
  }
  const seconds = Number(trace.dataset.refresh || "5");
  let timer = null;

  async function refresh() {
    if (document.hidden || !toggle.checked) {
      return;
    }
    try {
      const response = await fetch(window.location.pathname, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      if (!response.ok) {
        return;
      }
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("trace");
      const current = document.getElementById("trace");
      if (fresh && current) {
        // keep the user's choice and focus: replace only the figures and the timeline
        for (const id of ["funnel-h", "timeline-h"]) {
          const oldSection = current.querySelector(`[aria-labelledby="${id}"]`);
          const newSection = fresh.querySelector(`[aria-labelledby="${id}"]`);
          if (oldSection && newSection) {
            oldSection.replaceWith(newSection);
          }
        }
        const stamp = current.querySelector(".as-of time");
        const freshStamp = fresh.querySelector(".as-of time");
        if (stamp && freshStamp) {
          stamp.replaceWith(freshStamp);
        }
      }
    } catch (error) {
      // offline for a moment: the next round tries again
    }
  }

  function schedule() {
    if (timer !== null) {
      window.clearInterval(timer);
      timer = null;
    }
    if (toggle.checked) {
      timer = window.setInterval(refresh, seconds * 1000);
    }
  }

  toggle.addEventListener("change", schedule);
  schedule();
})();
