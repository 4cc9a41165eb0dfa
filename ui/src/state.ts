/** What a search is — query and range — and its place in the URL, so a link can be shared. */

export interface SearchState {
  q: string;
  /** A span before now (`24h`) or an RFC 3339 time, as the API takes it. */
  since: string;
  /** Empty for "now", else an RFC 3339 time. */
  until: string;
}

export const QUICK_RANGES = ["15m", "1h", "24h", "7d"] as const;
export const DEFAULT_SINCE = "24h";
export const BASE = "/ui/";

const SPAN = /^(\d+)([smhdw])$/;
const UNIT_S: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

export function readState(search: string = location.search): SearchState {
  const params = new URLSearchParams(search);
  return {
    q: params.get("q") ?? "",
    since: params.get("since") || DEFAULT_SINCE,
    until: params.get("until") ?? "",
  };
}

export function searchUrl(state: SearchState): string {
  const params = new URLSearchParams();
  if (state.q) params.set("q", state.q);
  params.set("since", state.since);
  if (state.until) params.set("until", state.until);
  return `${BASE}?${params.toString()}`;
}

/** The range as epoch seconds, reading a span as before now. */
export function absoluteRange(state: SearchState, now = Date.now() / 1000): [number, number] {
  const span = SPAN.exec(state.since);
  const until = state.until ? Date.parse(state.until) / 1000 : now;
  const since = span ? until - Number(span[1]) * UNIT_S[span[2]] : Date.parse(state.since) / 1000;
  return [since, until];
}

export function isoSeconds(epochSeconds: number): string {
  return new Date(Math.round(epochSeconds) * 1000).toISOString().replace(".000Z", "Z");
}

export interface Interval {
  name: string;
  seconds: number;
}

const INTERVALS: Interval[] = [
  { name: "1m", seconds: 60 },
  { name: "5m", seconds: 300 },
  { name: "1h", seconds: 3600 },
  { name: "1d", seconds: 86400 },
];
const MAX_BARS = 400;

/** The finest bucket width the counts API offers that keeps the chart under MAX_BARS bars. */
export function intervalFor(widthSeconds: number): Interval {
  return INTERVALS.find((i) => widthSeconds / i.seconds <= MAX_BARS) ?? INTERVALS[INTERVALS.length - 1];
}

const PLAIN_ID = /^[\w.:@/-]+$/;

/** A device id as a query term; quoted unless plain, so that any id reads back as itself. */
export function deviceTerm(deviceId: string): string {
  return PLAIN_ID.test(deviceId) ? `device:${deviceId}` : `device:"${deviceId.replace(/"/g, '\\"')}"`;
}
