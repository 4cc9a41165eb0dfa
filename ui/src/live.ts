/** The live toggle: new logs slide in at the top, with a pause and a count of dropped logs. */

import { h } from "./dom";
import { count } from "./format";
import type { Log } from "./logs";
import { LiveTail } from "./tail";

/** Newest live rows kept on the page; older ones leave it (search finds them). */
const MAX_LIVE_ROWS = 1000;

export type RenderRow = (log: Log) => HTMLLIElement;

export class LivePanel {
  readonly controls: HTMLElement;
  readonly rows = h("ol", { class: "rows live-rows", "aria-label": "Live logs", "aria-live": "polite" });
  private readonly toggle = h("button", { type: "button", class: "live-toggle", "aria-pressed": "false" }, "Live");
  private readonly pause = h("button", { type: "button", class: "pause", hidden: true }, "Pause");
  private readonly status = h("span", { class: "live-status", role: "status" });
  private readonly droppedLabel = h("span", { class: "dropped", hidden: true });
  private readonly tail: LiveTail;
  private held: Log[] = [];
  private dropped = 0;
  private paused = false;
  private query = "";

  constructor(private readonly render: RenderRow) {
    this.tail = new LiveTail({
      onLog: (log) => this.arrive(log),
      onDropped: (n) => this.drop(n),
      onStatus: (status) => (this.status.textContent = status),
    });
    this.toggle.addEventListener("click", () => (this.tail.running ? this.stop() : this.start()));
    this.pause.addEventListener("click", () => this.setPaused(!this.paused));
    this.controls = h("div", { class: "live" }, this.toggle, this.pause, this.status, this.droppedLabel);
  }

  /** A new search: the tail follows its query. */
  follow(query: string): void {
    this.query = query;
    this.rows.replaceChildren();
    if (this.tail.running) this.start();
  }

  start(): void {
    this.held = [];
    this.dropped = 0;
    this.droppedLabel.hidden = true;
    this.setPaused(false);
    this.toggle.setAttribute("aria-pressed", "true");
    this.pause.hidden = false;
    this.status.textContent = "connecting…";
    this.tail.start(this.query);
  }

  stop(): void {
    this.tail.stop();
    this.toggle.setAttribute("aria-pressed", "false");
    this.pause.hidden = true;
    this.status.textContent = "";
    this.flush();
  }

  private setPaused(paused: boolean): void {
    this.paused = paused;
    this.pause.textContent = paused ? "Resume" : "Pause";
    this.pause.setAttribute("aria-pressed", String(paused));
    if (!paused) this.flush();
  }

  private arrive(log: Log): void {
    if (!this.paused) return this.show(log, true);
    this.held.push(log);
    if (this.held.length > MAX_LIVE_ROWS) this.drop(this.held.splice(0, 1).length);
    this.status.textContent = `paused, ${count(this.held.length)} waiting`;
  }

  private flush(): void {
    this.held.forEach((log) => this.show(log, false));
    this.held = [];
  }

  private show(log: Log, animate: boolean): void {
    const row = this.render(log);
    if (animate) row.classList.add("fresh");
    this.rows.prepend(row);
    while (this.rows.childElementCount > MAX_LIVE_ROWS) this.rows.lastElementChild?.remove();
    if (this.tail.running && !this.paused) this.status.textContent = "live";
  }

  private drop(n: number): void {
    this.dropped += n;
    this.droppedLabel.hidden = false;
    this.droppedLabel.textContent = `${count(this.dropped)} dropped`;
  }
}
