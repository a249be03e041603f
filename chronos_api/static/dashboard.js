// The usage dashboard's charts (Chart.js, vendored) and its live refresh on new cost records.
"use strict";
(function () {
  const COLORS = ["#2456c7", "#1f7a3d", "#9a6700", "#b3261e", "#6b3fa0", "#0f7b8a", "#5b6676"];
  let charts = [];

  function draw() {
    for (const chart of charts) chart.destroy();
    charts = [];
    const node = document.getElementById("chart-data");
    if (!node || !window.Chart) return;
    const data = JSON.parse(node.textContent);
    const stages = Object.keys(data.stages);
    charts.push(new Chart(document.getElementById("chart-days"), {
      type: "bar",
      data: { labels: data.days.map((d) => d.slice(5)),
              datasets: stages.map((s, i) => ({ label: s, data: data.stages[s].map(Number), backgroundColor: COLORS[i % COLORS.length] })) },
      options: { animation: false, maintainAspectRatio: false, scales: { x: { stacked: true }, y: { stacked: true, ticks: { callback: (v) => "$" + v } } } },
    }));
    charts.push(new Chart(document.getElementById("chart-models"), {
      type: "doughnut",
      data: { labels: data.models.map((m) => m.label), datasets: [{ data: data.models.map((m) => Number(m.usd)), backgroundColor: COLORS }] },
      options: { animation: false, maintainAspectRatio: false },
    }));
  }

  draw();
  const box = document.getElementById("dashboard");
  if (box?.dataset.live) {
    let refreshing = false;
    const source = new EventSource(box.dataset.live);
    let pending = null;
    const refresh = async (version) => {
      if (version === box.dataset.version) return;  // what the page already shows
      if (refreshing) { pending = version; return; }
      refreshing = true;
      try {
        const response = await fetch(box.dataset.partial, { credentials: "same-origin" });
        if (response.ok) {
          box.innerHTML = await response.text();
          box.dataset.version = version;
          draw();
          document.body.dataset.dashboardRefreshed = String(Date.now());
        }
      } finally {
        refreshing = false;
        if (pending !== null) { const next = pending; pending = null; refresh(next); }
      }
    };
    source.addEventListener("ledger", (event) => refresh(JSON.parse(event.data).version));
  }
})();
