/** A refused query, shown under the box with a caret at the position the server names. */

import { ApiError } from "./api";
import { h, replace } from "./dom";

export function showQueryError(box: HTMLElement, input: HTMLInputElement, error: ApiError): boolean {
  const detail = error.body.detail?.find((d) => d.field === "q");
  if (detail === undefined) return false;
  const query = input.value;
  const position = detail.position;
  const parts: (HTMLElement | string)[] = [];
  if (position !== undefined) {
    const at = Math.min(position - 1, query.length);
    parts.push(
      h(
        "code",
        { class: "q-echo" },
        query.slice(0, at),
        h("span", { class: "caret", "aria-label": `position ${position}` }, query.slice(at, at + 1) || " "),
        query.slice(at + 1),
      ),
    );
    input.setSelectionRange(at, at);
  }
  replace(box, h("p", {}, error.body.message), ...parts);
  box.dataset.rule = detail.rule ?? "";
  box.dataset.position = position === undefined ? "" : String(position);
  box.hidden = false;
  input.setAttribute("aria-invalid", "true");
  return true;
}

export function clearQueryError(box: HTMLElement, input: HTMLInputElement): void {
  box.hidden = true;
  replace(box);
  input.removeAttribute("aria-invalid");
}
