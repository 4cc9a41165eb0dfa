/** The search page: query box, range, volume chart, live tail and results, all in the URL. */

import { ApiError, getJson } from "./api";
import { VolumeChart } from "./chart";
import { h, replace } from "./dom";
import { matcherOf, type Matcher } from "./highlight";
import { LivePanel } from "./live";
import { logRow, type Log } from "./logs";
import { clearQueryError, showQueryError } from "./query_error";
import { RangePicker } from "./range_picker";
import { navigate } from "./router";
import { isoSeconds, readState, searchUrl, type SearchState } from "./state";

const PAGE = 100;
/** Set once the first page of results is on screen: the benchmark reads it (docs/ui.md). */
export const FIRST_RESULTS_MARK = "fleetlog:first-results";

interface Page {
  data: Log[];
  next_cursor?: string;
}

export class SearchPage {
  readonly element: HTMLElement;
  private readonly input = h("input", {
    id: "q",
    type: "search",
    name: "q",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: 'level>=error device:cam-* "valve stuck"',
    "aria-describedby": "q-error q-hint",
  });
  private readonly error = h("div", { id: "q-error", class: "q-error", role: "alert", hidden: true });
  private readonly range = new RangePicker((since, until) => this.go({ ...this.state, since, until }));
  private readonly chart = new VolumeChart((since, until) =>
    this.go({ ...this.state, since: isoSeconds(since), until: isoSeconds(until) }),
  );
  private readonly live = new LivePanel((log) => this.row(log));
  private readonly results = h("ol", { class: "rows", id: "results", "aria-label": "Results" });
  private readonly footer = h("p", { class: "results-end", role: "status" });
  private state: SearchState = readState();
  private matcher: Matcher = matcherOf("");
  private cursor: string | undefined;
  private loading = false;
  /** Bumped by each search, so answers to a superseded one are dropped. */
  private generation = 0;

  constructor() {
    const form = h(
      "form",
      { class: "searchbar", role: "search", onsubmit: (event: Event) => this.submit(event) },
      h("label", { for: "q", class: "visually-hidden" }, "Query"),
      this.input,
      h("button", { type: "submit" }, "Search"),
    );
    const hint = h(
      "p",
      { id: "q-hint", class: "hint" },
      "Press / to search, Esc to clear. ",
      'Words, "a phrase", prefix*, -word, a OR b, device:cam-*, level>=warning, attr.key:value, message~"regex".',
    );
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.input.value = "";
    });
    this.element = h(
      "div",
      { class: "search-page" },
      form,
      this.error,
      hint,
      h("div", { class: "toolbar" }, this.range.element, this.live.controls),
      this.chart.element,
      this.live.rows,
      this.results,
      this.footer,
    );
    new IntersectionObserver(() => void this.more()).observe(this.footer);
  }

  focus(): void {
    this.input.focus();
  }

  /** Shows the search the URL holds. */
  show(): void {
    this.state = readState();
    this.input.value = this.state.q;
    this.range.show(this.state);
    void this.run();
  }

  private go(state: SearchState): void {
    navigate(searchUrl(state));
  }

  private submit(event: Event): void {
    event.preventDefault();
    this.go({ ...this.state, q: this.input.value.trim() });
  }

  private addTerm(term: string): void {
    this.go({ ...this.state, q: this.state.q ? `${this.state.q} ${term}` : term });
  }

  private row(log: Log): HTMLLIElement {
    return logRow(log, this.matcher, (term) => this.addTerm(term));
  }

  private async run(): Promise<void> {
    const generation = ++this.generation;
    this.matcher = matcherOf(this.state.q);
    this.cursor = undefined;
    this.loading = false;
    clearQueryError(this.error, this.input);
    replace(this.results);
    this.live.follow(this.state.q);
    this.footer.textContent = "Searching…";
    const chart = this.chart.load(this.state).catch((error: unknown) => this.chart.clear(messageOf(error)));
    await this.page(generation);
    performance.mark(FIRST_RESULTS_MARK);
    void this.more();
    await chart;
  }

  /** The next page, while the end of the results is in view (infinite scroll on the cursor). */
  private async more(): Promise<void> {
    while (this.endInView() && this.cursor !== undefined && !this.loading) {
      await this.page(this.generation);
    }
  }

  private async page(generation: number): Promise<void> {
    this.loading = true;
    const { q, since, until } = this.state;
    try {
      const answer = await getJson<Page>("/api/logs", { q, since, until, limit: PAGE, cursor: this.cursor });
      if (generation !== this.generation) return;
      this.results.append(...answer.data.map((log) => this.row(log)));
      this.cursor = answer.next_cursor;
      this.footer.textContent = this.endText();
    } catch (error) {
      if (generation !== this.generation) return;
      this.cursor = undefined;
      const shown = error instanceof ApiError && showQueryError(this.error, this.input, error);
      this.footer.textContent = shown ? "" : messageOf(error);
    } finally {
      if (generation === this.generation) this.loading = false;
    }
  }

  private endInView(): boolean {
    return this.footer.getBoundingClientRect().top < window.innerHeight;
  }

  private endText(): string {
    if (this.cursor !== undefined) return "Loading more…";
    return this.results.childElementCount ? "No more logs in this range." : "No logs match in this range.";
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
