/** Times in the browser's zone (UTC on hover), counts and durations as people read them. */

import { h } from "./dom";

const local = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  fractionalSecondDigits: 3,
});

export function timeElement(iso: string): HTMLTimeElement {
  const when = new Date(iso);
  const utc = when.toISOString();
  return h("time", { datetime: utc, title: `${utc.replace("T", " ").replace("Z", "")} UTC` }, local.format(when));
}

export function count(n: number): string {
  return n.toLocaleString();
}

export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}
