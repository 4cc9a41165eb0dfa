/**
 * The volume chart: stacked bars by level from `GET /api/logs/count`, drawn by uPlot.
 * Click-drag zooms to the dragged range; a click on a bar narrows to its bucket.
 */

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { getJson } from "./api";
import { h, replace } from "./dom";
import { count } from "./format";
import { LEVEL_COLORS, LEVELS, cssVar } from "./levels";
import { absoluteRange, intervalFor, type Interval, type SearchState } from "./state";

interface Bucket {
  start: string;
  key: string;
  count: number;
}

export type OnRange = (since: number, until: number) => void;

const HEIGHT = 160;
const CLICK_SLOP_PX = 3;

interface Volume {
  xs: number[];
  /** Counts per level, in the order of LEVELS. */
  levels: number[][];
  total: number;
}

function volumeOf(buckets: Bucket[], from: number, to: number, interval: Interval): Volume {
  const first = Math.floor(from / interval.seconds) * interval.seconds;
  const xs: number[] = [];
  for (let x = first; x < to; x += interval.seconds) xs.push(x);
  const levels = LEVELS.map(() => xs.map(() => 0));
  let total = 0;
  for (const bucket of buckets) {
    const at = (Date.parse(bucket.start) / 1000 - first) / interval.seconds;
    const level = LEVELS.indexOf(bucket.key as (typeof LEVELS)[number]);
    if (level >= 0 && at >= 0 && at < xs.length) levels[level][at] += bucket.count;
    total += bucket.count;
  }
  return { xs, levels, total };
}

/** Series for uPlot: each level's bar reaches the sum of it and the levels below it, and the
 * highest is drawn first, so the lower ones paint over it and the bars read as a stack. */
function stacked(volume: Volume): uPlot.AlignedData {
  const sums = volume.levels.map((_, i) =>
    volume.xs.map((_x, j) => volume.levels.slice(0, i + 1).reduce((s, level) => s + level[j], 0)),
  );
  return [volume.xs, ...sums.reverse()];
}

export class VolumeChart {
  readonly element: HTMLElement;
  private readonly plotArea: HTMLElement;
  private readonly summary: HTMLElement;
  private plot: uPlot | null = null;
  private volume: Volume | null = null;
  private interval: Interval = intervalFor(3600);
  private range: [number, number] = [0, 0];

  constructor(private readonly onRange: OnRange) {
    this.summary = h("p", { class: "chart-summary", "aria-live": "polite" });
    this.plotArea = h("div", { class: "plot", role: "img", "aria-label": "Log volume by level" });
    this.element = h("section", { class: "chart", "aria-label": "Volume" }, this.summary, this.plotArea);
    new ResizeObserver(() => this.plot?.setSize(this.size())).observe(this.plotArea);
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => this.draw());
  }

  async load(state: SearchState): Promise<void> {
    this.range = absoluteRange(state);
    this.interval = intervalFor(this.range[1] - this.range[0]);
    const params = { q: state.q, since: state.since, until: state.until, interval: this.interval.name };
    const answer = await getJson<{ buckets: Bucket[] }>("/api/logs/count", { ...params, group_by: "level" });
    this.volume = volumeOf(answer.buckets, this.range[0], this.range[1], this.interval);
    Object.assign(this.element.dataset, { total: String(this.volume.total), interval: this.interval.name });
    this.summary.textContent = `${count(this.volume.total)} logs in range, in ${this.interval.name} bars`;
    this.plotArea.setAttribute("aria-label", `Log volume by level: ${this.summary.textContent}`);
    this.draw();
  }

  clear(message: string): void {
    this.volume = null;
    this.plot?.destroy();
    this.plot = null;
    this.summary.textContent = message;
    delete this.element.dataset.total;
  }

  private size(): { width: number; height: number } {
    return { width: Math.max(200, this.plotArea.clientWidth), height: HEIGHT };
  }

  private draw(): void {
    this.plot?.destroy();
    replace(this.plotArea);
    if (this.volume === null) return;
    this.plot = new uPlot(this.options(this.volume), stacked(this.volume), this.plotArea);
    this.listenForClicks(this.plot);
  }

  private options(volume: Volume): uPlot.Options {
    const axis = { stroke: cssVar("--muted"), grid: { stroke: cssVar("--grid"), width: 1 }, ticks: { show: false } };
    const bars = uPlot.paths.bars!({ align: 1, size: [0.9, Infinity], gap: 1 });
    const order = [...LEVELS].reverse();
    return {
      ...this.size(),
      scales: { x: { time: true, range: () => [volume.xs[0], this.range[1]] } },
      axes: [axis, { ...axis, size: 48 }],
      cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
      legend: { live: true },
      series: [
        { label: "time", value: (_u, v) => (v === null ? "" : new Date(v * 1000).toLocaleString()) },
        ...order.map((level, i) => ({
          label: level,
          fill: LEVEL_COLORS[level],
          stroke: LEVEL_COLORS[level],
          width: 0,
          paths: bars,
          value: (_u: uPlot, _v: number | null, _s: number, idx: number | null) =>
            idx === null ? "" : count(volume.levels[LEVELS.length - 1 - i][idx]),
        })),
      ],
      hooks: { setSelect: [(u) => this.zoom(u)] },
    };
  }

  private zoom(u: uPlot): void {
    if (u.select.width < CLICK_SLOP_PX) return;
    const since = u.posToVal(u.select.left, "x");
    const until = u.posToVal(u.select.left + u.select.width, "x");
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    this.onRange(since, until);
  }

  private listenForClicks(u: uPlot): void {
    // The bucket under the pointer, not uPlot's nearest point: a bar spans its whole bucket.
    u.over.addEventListener("click", () => {
      const left = u.cursor.left;
      if (left === undefined || left < 0 || this.volume === null) return;
      const width = this.interval.seconds;
      const xs = this.volume.xs;
      const idx = Math.floor((u.posToVal(left, "x") - xs[0]) / width);
      if (idx >= 0 && idx < xs.length) this.onRange(xs[idx], xs[idx] + width);
    });
  }
}
