/**
 * The fleet view: `GET /api/devices`, sortable, with each device's volume over the last 24 h
 * as a sparkline (`GET /api/logs/count?group_by=device`). A device's name searches it.
 */

import { getJson } from "./api";
import { h, replace } from "./dom";
import { count, duration, timeElement } from "./format";
import { sparkline } from "./sparkline";
import { absoluteRange, deviceTerm, searchUrl, DEFAULT_SINCE } from "./state";

interface Device {
  device_id: string;
  last_seen: string;
  silent_for_s: number;
  total: number;
  counts: Record<string, number>;
}

interface Bucket {
  start: string;
  key: string;
  count: number;
}

const WINDOW = DEFAULT_SINCE;
const HOUR = 3600;
const PAGE = 100;
/** Under the query's 4,096 characters, with room for the joins. */
const MAX_QUERY_CHARS = 3500;
const COLUMNS: [string, string | null][] = [
  ["Device", "device"],
  ["Last seen", "last_seen"],
  [`Volume, ${WINDOW}`, null],
  [`Logs, ${WINDOW}`, "total"],
  [`Errors, ${WINDOW}`, "errors"],
  ["Silent for", "silent_for"],
];

function errors(device: Device): number {
  return (device.counts.ERROR ?? 0) + (device.counts.CRITICAL ?? 0);
}

/** `device:a OR device:b …`, split so that no query passes the length limit. */
function deviceQueries(ids: string[]): string[] {
  const queries: string[] = [];
  let terms: string[] = [];
  for (const term of ids.map(deviceTerm)) {
    if (terms.length && terms.join(" OR ").length + term.length + 4 > MAX_QUERY_CHARS) {
      queries.push(terms.join(" OR "));
      terms = [];
    }
    terms.push(term);
  }
  if (terms.length) queries.push(terms.join(" OR "));
  return queries;
}

export class FleetPage {
  readonly element: HTMLElement;
  private readonly body = h("tbody");
  private readonly head = h("tr");
  private readonly status = h("p", { class: "results-end", role: "status" });
  private readonly moreButton = h("button", { type: "button", hidden: true }, "More devices");
  private sort = "last_seen";
  private order = "desc";
  private cursor: string | undefined;

  constructor() {
    this.moreButton.addEventListener("click", () => void this.load());
    this.element = h(
      "div",
      { class: "fleet-page" },
      h("h1", {}, "Fleet"),
      h("div", { class: "table-scroll" }, h("table", { class: "fleet" }, h("thead", {}, this.head), this.body)),
      this.status,
      this.moreButton,
    );
  }

  show(): void {
    const params = new URLSearchParams(location.search);
    this.sort = params.get("sort") ?? "last_seen";
    this.order = params.get("order") === "asc" ? "asc" : "desc";
    this.renderHead();
    this.cursor = undefined;
    replace(this.body);
    void this.load();
  }

  private renderHead(): void {
    replace(
      this.head,
      ...COLUMNS.map(([label, key]) => {
        if (key === null) return h("th", { scope: "col" }, label);
        const sorted = key === this.sort;
        const next = sorted && this.order === "desc" ? "asc" : "desc";
        const link = h("a", { href: `/ui/fleet?sort=${key}&order=${next}`, "data-link": true }, label);
        const ariaSort = sorted ? (this.order === "asc" ? "ascending" : "descending") : null;
        return h("th", { scope: "col", "aria-sort": ariaSort }, link, sorted ? (this.order === "asc" ? " ▲" : " ▼") : null);
      }),
    );
  }

  private async load(): Promise<void> {
    this.status.textContent = "Loading…";
    const params = { sort: this.sort, order: this.order, since: WINDOW, limit: PAGE, cursor: this.cursor };
    try {
      const answer = await getJson<{ data: Device[]; next_cursor?: string }>("/api/devices", params);
      const cells = answer.data.map((device) => this.row(device));
      this.cursor = answer.next_cursor;
      this.moreButton.hidden = this.cursor === undefined;
      this.status.textContent = this.body.childElementCount ? "" : "No devices have sent logs yet.";
      await this.sparklines(answer.data.map((d) => d.device_id), cells);
    } catch (error) {
      this.status.textContent = error instanceof Error ? error.message : String(error);
    }
  }

  private row(device: Device): [string, HTMLElement] {
    const spark = h("td", { class: "spark" });
    const search = searchUrl({ q: deviceTerm(device.device_id), since: WINDOW, until: "" });
    this.body.append(
      h(
        "tr",
        {},
        h("th", { scope: "row" }, h("a", { href: search, "data-link": true }, device.device_id)),
        h("td", {}, timeElement(device.last_seen)),
        spark,
        h("td", { class: "num" }, count(device.total)),
        h("td", { class: errors(device) ? "num errors" : "num" }, count(errors(device))),
        h("td", { class: "num" }, duration(device.silent_for_s)),
      ),
    );
    return [device.device_id, spark];
  }

  private async sparklines(ids: string[], cells: [string, HTMLElement][]): Promise<void> {
    const [since, until] = absoluteRange({ q: "", since: WINDOW, until: "" });
    const first = Math.floor(since / HOUR) * HOUR;
    const xs: number[] = [];
    for (let x = first; x < until; x += HOUR) xs.push(x);
    const volumes = new Map(ids.map((id) => [id, xs.map(() => 0)]));
    for (const q of deviceQueries(ids)) {
      const params = { q, since: WINDOW, interval: "1h", group_by: "device" };
      const answer = await getJson<{ buckets: Bucket[] }>("/api/logs/count", params);
      for (const bucket of answer.buckets) {
        const at = (Date.parse(bucket.start) / 1000 - first) / HOUR;
        const volume = volumes.get(bucket.key);
        if (volume !== undefined && at >= 0 && at < xs.length) volume[at] += bucket.count;
      }
    }
    for (const [id, cell] of cells) {
      const volume = volumes.get(id) ?? [];
      const total = volume.reduce((a, b) => a + b, 0);
      cell.append(h("span", { class: "visually-hidden" }, `${count(total)} logs in ${WINDOW}`));
      sparkline(cell, xs, volume);
    }
  }
}
