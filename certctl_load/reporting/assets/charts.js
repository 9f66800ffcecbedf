/* certctl-load's per-second charts, drawn with uPlot. Shared by the HTML report (every row at once) and
   the web UI's live page (rows appended as the run goes). The page holds its data as JSON in
   <script id="certctl-data">: {units, charts, marks, rows}; CertctlCharts.mount() draws it and sets
   window.certctlCharts, whose plots (uPlot instances, by chart key) the tests read. */
(function () {
  "use strict";

  const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  const SECONDS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
  const COUNTS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6];
  const NO_VALUE = "\u2013";

  /* A figure for people, from the unit table figures.py defines: "5.73 ms", "0.00 %". */
  function format(units, value, unit) {
    if (value === null || value === undefined || Number.isNaN(value)) return NO_VALUE;
    const spec = units[unit];
    return (value * spec.scale).toFixed(spec.decimals) + spec.suffix;
  }

  /* A row's value for a series: a number, the sum of a mapping (all failure kinds), or null. */
  function valueOf(row, series, perKind) {
    if (series.kind !== undefined) return (row[perKind] || {})[series.kind] || 0;
    const value = row[series.field];
    if (value !== null && typeof value === "object") {
      return Object.values(value).reduce((sum, count) => sum + count, 0);
    }
    return value === undefined ? null : value;
  }

  class CertctlCharts {
    constructor(root, data) {
      this.root = root;
      this.units = data.units;
      this.specs = data.charts;
      this.rows = [];
      this.plots = {};
      this.kinds = {};
      this.setMarks(data.marks);
      this.append(data.rows || []);
    }

    static mount(rootId = "charts", dataId = "certctl-data") {
      const data = JSON.parse(document.getElementById(dataId).textContent);
      window.certctlCharts = new CertctlCharts(document.getElementById(rootId), data);
      return window.certctlCharts;
    }

    format(value, unit) {
      return format(this.units, value, unit);
    }

    /* An axis tick: the figure without trailing zeros ("1000 ms", "0.5 ms"). */
    tick(value, unit) {
      return this.format(value, unit).replace(/\.(\d*?)0+(?=\D|$)/, (m, kept) => (kept ? `.${kept}` : ""));
    }

    /* The latency chart's threshold lines and worst windows, listed under it too. */
    setMarks(marks) {
      this.marks = marks || { lines: [], windows: [] };
      for (const plot of Object.values(this.plots)) plot.setData(plot.data); // the latency scale spans the limits
      const list = document.getElementById("certctl-marks");
      if (!list) return;
      list.replaceChildren();
      for (const line of this.marks.lines) {
        const item = document.createElement("li");
        item.textContent = `limit ${line.label}: ${this.format(line.value, "ms")}`;
        list.append(item);
      }
      for (const window_ of this.marks.windows) {
        const item = document.createElement("li");
        item.className = window_.ok ? "tone-pass" : "tone-fail";
        item.textContent = `${window_.label}, from ${window_.start} s to ${window_.end} s`;
        list.append(item);
      }
    }

    /* A new run: no rows, the new run's marks. */
    reset(marks) {
      this.rows = [];
      this.kinds = {};
      for (const plot of Object.values(this.plots)) plot.destroy();
      this.plots = {};
      this.root.replaceChildren();
      this.setMarks(marks);
      this.append([]);
    }

    append(rows) {
      this.rows.push(...rows);
      for (const spec of this.specs) {
        const series = this.seriesOf(spec);
        const signature = series.map((s) => s.label).join("\u0000");
        const data = this.columns(spec, series);
        if (this.plots[spec.key] && this.kinds[spec.key] === signature) {
          this.plots[spec.key].setData(data);
        } else {
          this.draw(spec, series, data);
          this.kinds[spec.key] = signature;
        }
      }
    }

    seriesOf(spec) {
      const series = spec.series.slice();
      if (spec.per_kind) {
        const kinds = new Set();
        for (const row of this.rows) Object.keys(row[spec.per_kind] || {}).forEach((k) => kinds.add(k));
        for (const kind of [...kinds].sort()) series.push({ field: spec.per_kind, label: kind, kind });
      }
      return series;
    }

    columns(spec, series) {
      const columns = [this.rows.map((row) => row.t)];
      for (const s of series) {
        columns.push(
          this.rows.map((row) => {
            const value = valueOf(row, s, spec.per_kind);
            return spec.log && value !== null && value <= 0 ? null : value;
          }),
        );
      }
      return columns;
    }

    draw(spec, series, data) {
      const existing = this.plots[spec.key];
      const holder = existing ? existing.root.parentNode : document.createElement("section");
      if (existing) existing.destroy();
      else {
        holder.className = "chart";
        holder.dataset.chart = spec.key;
        this.root.append(holder);
      }
      const unit = spec.unit;
      const lines = () => (spec.key === "latency" ? this.marks.lines : []);
      const yScale = spec.log
        ? {
            distr: 3,
            log: 10,
            range: (u, min, max) => {
              const limits = lines().map((line) => line.value);
              const low = Math.min(...[min, ...limits].filter((v) => v !== null && v > 0), Infinity);
              const high = Math.max(...[max, ...limits].filter((v) => v !== null && v > 0), -Infinity);
              return Number.isFinite(low) ? uPlot.rangeLog(low, high, 10, true) : [0.1, 1000];
            },
          }
        : { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] };
      const options = {
        title: spec.title,
        width: Math.max(480, (this.root.clientWidth || 1100) - 8),
        height: 220,
        scales: { x: { time: false }, y: yScale },
        series: [
          { label: "second", value: (u, v) => (v === null ? NO_VALUE : `${v} s`) },
          ...series.map((s, index) => ({
            label: s.label,
            stroke: COLORS[index % COLORS.length],
            width: 1.5,
            points: { show: false },
            value: (u, v) => this.format(v, unit),
          })),
        ],
        axes: [
          { incrs: SECONDS, values: (u, splits) => splits.map((v) => `${v} s`) },
          {
            size: 80,
            incrs: unit === "count" ? COUNTS : undefined,
            values: (u, splits) => splits.map((v) => this.tick(v, unit)),
          },
        ],
        hooks: spec.key === "latency" ? { drawClear: [(u) => this.drawWindows(u)], draw: [(u) => this.drawLines(u)] } : {},
      };
      this.plots[spec.key] = new uPlot(options, data, holder);
    }

    drawLines(u) {
      const { ctx } = u;
      const { left, top, width, height } = u.bbox;
      ctx.save();
      ctx.setLineDash([6, 4]);
      ctx.strokeStyle = ctx.fillStyle = "#c62828";
      ctx.lineWidth = devicePixelRatio;
      ctx.font = `${11 * devicePixelRatio}px sans-serif`;
      ctx.textAlign = "left";
      ctx.textBaseline = "bottom";
      for (const line of this.marks.lines) {
        const y = u.valToPos(line.value, "y", true);
        if (!(y >= top && y <= top + height)) continue;
        ctx.beginPath();
        ctx.moveTo(left, y);
        ctx.lineTo(left + width, y);
        ctx.stroke();
        ctx.fillText(line.label, left + 6 * devicePixelRatio, y - 3 * devicePixelRatio);
      }
      ctx.restore();
    }

    drawWindows(u) {
      const { ctx } = u;
      const { left, top, width, height } = u.bbox;
      ctx.save();
      ctx.font = `${11 * devicePixelRatio}px sans-serif`;
      ctx.textAlign = "left";
      ctx.textBaseline = "top";
      for (const window_ of this.marks.windows) {
        const x0 = Math.max(left, u.valToPos(window_.start, "x", true));
        const x1 = Math.min(left + width, u.valToPos(window_.end, "x", true));
        if (!(x1 > x0)) continue;
        ctx.fillStyle = window_.ok ? "rgba(46, 125, 50, 0.12)" : "rgba(198, 40, 40, 0.15)";
        ctx.fillRect(x0, top, x1 - x0, height);
        ctx.fillStyle = window_.ok ? "#2e7d32" : "#c62828";
        ctx.fillText(window_.label, x0 + 4 * devicePixelRatio, top + 4 * devicePixelRatio);
      }
      ctx.restore();
    }
  }

  window.CertctlCharts = CertctlCharts;
})();
