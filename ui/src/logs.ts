/** A log as the API answers it, and its row in the results: badge, time, device, message. */

import { h } from "./dom";
import { timeElement } from "./format";
import { highlighted, type Matcher } from "./highlight";

export interface Log {
  id: number | string;
  device_id: string;
  log_level: string;
  message: string;
  log_data: Record<string, unknown>;
  created_at: string;
  received_at: string;
}

export type AddTerm = (term: string) => void;

const KEY = /^[A-Za-z0-9_-]+$/;
const BARE_VALUE = /^[^\s()"\\-][^\s()"]*$/;

/** Every scalar in `data` with its dotted path, as far as the query language can name it. */
function leaves(data: unknown, path: string[] = []): [string, unknown][] {
  if (data === null || typeof data !== "object") return path.length ? [[path.join("."), data]] : [];
  if (Array.isArray(data)) return [];
  return Object.entries(data).flatMap(([key, value]) =>
    KEY.test(key) ? leaves(value, [...path, key]) : [],
  );
}

export function attrTerm(path: string, value: unknown): string {
  const written = typeof value === "string" ? value : JSON.stringify(value);
  const quoted =
    typeof value === "string" && !BARE_VALUE.test(written)
      ? `"${written.replace(/"/g, '\\"')}"`
      : written;
  return `attr.${path}:${quoted}`;
}

function details(log: Log, addTerm: AddTerm): HTMLElement {
  const buttons = leaves(log.log_data).map(([path, value]) => {
    const term = attrTerm(path, value);
    return h("li", {}, h("button", { type: "button", class: "add-term", onclick: () => addTerm(term) }, `+ ${term}`));
  });
  return h(
    "div",
    { class: "details" },
    h("pre", { class: "json" }, JSON.stringify(log.log_data, null, 2)),
    buttons.length ? h("ul", { class: "terms", "aria-label": "Add to the query" }, ...buttons) : null,
    h("p", { class: "received" }, "received ", timeElement(log.received_at), ` · id ${log.id}`),
  );
}

export function logRow(log: Log, matcher: Matcher, addTerm: AddTerm): HTMLLIElement {
  const level = log.log_level.toUpperCase();
  const message = h("span", { class: "message" });
  message.append(highlighted(log.message, matcher));
  const toggle = h(
    "button",
    { type: "button", class: "row-head", "aria-expanded": "false" },
    h("span", { class: `badge level-${level.toLowerCase()}` }, level),
    timeElement(log.created_at),
    h("span", { class: "device" }, log.device_id),
    message,
  );
  const row = h("li", { class: "row", "data-id": String(log.id) }, toggle);
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") === "true";
    toggle.setAttribute("aria-expanded", String(!open));
    if (open) row.querySelector(".details")?.remove();
    else row.append(details(log, addTerm));
  });
  return row;
}
