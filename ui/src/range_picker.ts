/** Quick ranges (15m, 1h, 24h, 7d) and a custom range in the browser's zone. */

import { h } from "./dom";
import { QUICK_RANGES, absoluteRange, isoSeconds, type SearchState } from "./state";

export type OnPick = (since: string, until: string) => void;

/** `datetime-local` speaks local wall time without a zone; these convert to and from it. */
function toLocalInput(epochSeconds: number): string {
  const when = new Date(epochSeconds * 1000);
  const shifted = new Date(when.getTime() - when.getTimezoneOffset() * 60000);
  return shifted.toISOString().slice(0, 19);
}

function fromLocalInput(value: string): number {
  return new Date(value).getTime() / 1000;
}

export class RangePicker {
  readonly element: HTMLElement;
  private readonly quick: HTMLButtonElement[];
  private readonly from = h("input", { type: "datetime-local", step: "1", id: "range-from" });
  private readonly to = h("input", { type: "datetime-local", step: "1", id: "range-to" });
  private readonly custom: HTMLDetailsElement;

  constructor(private readonly onPick: OnPick) {
    this.quick = QUICK_RANGES.map((span) =>
      h("button", { type: "button", class: "quick", "data-span": span, onclick: () => onPick(span, "") }, span),
    );
    const form = h(
      "form",
      { class: "custom-range", onsubmit: (event: Event) => this.apply(event) },
      h("label", { for: "range-from" }, "From"),
      this.from,
      h("label", { for: "range-to" }, "To"),
      this.to,
      h("button", { type: "submit" }, "Apply"),
    );
    this.custom = h("details", { class: "custom" }, h("summary", {}, "Custom"), form);
    this.element = h("div", { class: "range", role: "group", "aria-label": "Time range" }, ...this.quick, this.custom);
  }

  show(state: SearchState): void {
    for (const button of this.quick) {
      button.setAttribute("aria-pressed", String(!state.until && button.dataset.span === state.since));
    }
    const [since, until] = absoluteRange(state);
    this.from.value = toLocalInput(since);
    this.to.value = toLocalInput(until);
    this.custom.classList.toggle("active", Boolean(state.until));
  }

  private apply(event: Event): void {
    event.preventDefault();
    const since = fromLocalInput(this.from.value);
    const until = fromLocalInput(this.to.value);
    if (!(since < until)) {
      this.to.setCustomValidity("must be after From");
      this.to.reportValidity();
      return;
    }
    this.to.setCustomValidity("");
    this.custom.open = false;
    this.onPick(isoSeconds(since), isoSeconds(until));
  }
}
