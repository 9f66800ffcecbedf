/* The capacity search's page: p95/p99 and the heartbeat rates against fleet size (one point per
   step), and each step's per-second charts (charts.js, one CertctlCharts per step with rows).
   The data: <script id="certctl-data">{units, charts, marks, fleet, steps}; window.certctlCapacity
   holds the fleet plots ({latency, rate}) and the steps' charts (by step number) for the tests. */
(function () {
  "use strict";

  const data = JSON.parse(document.getElementById("certctl-data").textContent);
  const proto = CertctlCharts.prototype;
  // The per-second charts' formatter and limit lines, on the fleet charts too.
  const figures = { units: data.units, marks: data.marks, format: proto.format, tick: proto.tick };
  const COLORS = ["#1f77b4", "#ff7f0e"];
  const root = document.getElementById("fleet-charts");
  const width = () => Math.max(480, (root.clientWidth || 1100) - 8);

  function fleetChart(title, unit, labels, columns, log) {
    const holder = document.createElement("section");
    holder.className = "chart";
    root.append(holder);
    const limits = log ? data.marks.lines.map((line) => line.value) : [];
    const y = log
      ? {
          distr: 3,
          log: 10,
          range: (u, min, max) => {
            const known = [min, max, ...limits].filter((v) => v !== null && v > 0);
            return known.length ? uPlot.rangeLog(Math.min(...known), Math.max(...known), 10, true) : [0.1, 1000];
          },
        }
      : { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] };
    const x = {
      time: false,
      range: (u, min, max) => (min === max ? [Math.max(0, min * 0.8), max * 1.2 + 1] : [min - (max - min) * 0.05, max + (max - min) * 0.05]),
    };
    const options = {
      title,
      width: width(),
      height: 260,
      scales: { x, y },
      series: [
        { label: "agents", value: (u, v) => (v === null ? "\u2013" : figures.format(v, "count")) },
        ...labels.map((label, index) => ({
          label,
          stroke: COLORS[index],
          width: 1.5,
          points: { show: true, size: 7 },
          value: (u, v) => figures.format(v, unit),
        })),
      ],
      axes: [
        { values: (u, splits) => splits.map((v) => figures.tick(v, "count")) },
        { size: 80, values: (u, splits) => splits.map((v) => figures.tick(v, unit)) },
      ],
      hooks: log ? { draw: [(u) => proto.drawLines.call(figures, u)] } : {},
    };
    const positive = columns.map((column) => column.map((v) => (log && v !== null && v <= 0 ? null : v)));
    return new uPlot(options, [data.fleet.fleet, ...positive], holder);
  }

  const fleet = data.fleet;
  const plots = {
    latency: fleetChart("Latency in the hold against fleet size (ms, log scale)", "ms", ["p95", "p99"], [fleet.p95, fleet.p99], true),
    rate: fleetChart("Heartbeats per second against fleet size: offered, completed in the hold", "rate", ["offered", "completed"], [fleet.offered, fleet.completed], false),
  };
  const steps = {};
  for (const step of data.steps) {
    const holder = document.getElementById(`step-${step.step}-charts`);
    steps[step.step] = new CertctlCharts(holder, { units: data.units, charts: data.charts, marks: data.marks, rows: step.rows });
  }
  window.certctlCapacity = { plots, steps };
})();
