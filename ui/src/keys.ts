/** API keys, for admins: create (the key is shown once, with a copy button), list, revoke. */

import { ApiError, getJson, sendJson } from "./api";
import { h, replace } from "./dom";
import { timeElement } from "./format";

interface Key {
  id: number;
  name: string;
  hint: string;
  scope: string;
  device_prefix: string | null;
  rate: number | null;
  burst: number | null;
  created_at: string;
  revoked_at: string | null;
}

function field(label: string, input: HTMLInputElement | HTMLSelectElement): HTMLElement {
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input);
}

export class KeysPage {
  readonly element: HTMLElement;
  private readonly body = h("tbody");
  private readonly created = h("div", { class: "created-key", role: "status" });
  private readonly problem = h("div", { class: "form-error", role: "alert" });
  private readonly name = h("input", { id: "key-name", name: "name", required: true, maxlength: "64", pattern: "[A-Za-z0-9_.\\-]+" });
  private readonly scope = h(
    "select",
    { id: "key-scope", name: "scope" },
    h("option", { value: "ingest" }, "ingest"),
    h("option", { value: "read" }, "read"),
    h("option", { value: "admin" }, "admin"),
  );
  private readonly prefix = h("input", { id: "key-prefix", name: "device_prefix", maxlength: "50" });
  private readonly rate = h("input", { id: "key-rate", name: "rate", type: "number", min: "0.001", step: "any" });
  private readonly burst = h("input", { id: "key-burst", name: "burst", type: "number", min: "1", step: "1" });

  constructor() {
    const form = h(
      "form",
      { class: "key-form", onsubmit: (event: Event) => void this.create(event) },
      field("Name", this.name),
      field("Scope", this.scope),
      field("Device prefix (optional)", this.prefix),
      field("Rate per second (optional)", this.rate),
      field("Burst (optional)", this.burst),
      h("button", { type: "submit" }, "Create key"),
    );
    const head = ["Name", "Key starts", "Scope", "Device prefix", "Rate / burst", "Created", "Revoked", ""];
    this.element = h(
      "div",
      { class: "keys-page" },
      h("h1", {}, "API keys"),
      h("section", { "aria-labelledby": "new-key" }, h("h2", { id: "new-key" }, "New key"), form, this.problem, this.created),
      h("section", { "aria-labelledby": "all-keys" }, h("h2", { id: "all-keys" }, "Keys"),
        h("div", { class: "table-scroll" }, h("table", { class: "keys" }, h("thead", {}, h("tr", {}, ...head.map((t) => h("th", { scope: "col" }, t)))), this.body))),
    );
  }

  show(): void {
    replace(this.created);
    replace(this.problem);
    void this.list();
  }

  private async list(): Promise<void> {
    const keys = await getJson<Key[]>("/api/keys");
    replace(this.body, ...keys.map((key) => this.row(key)));
  }

  private row(key: Key): HTMLTableRowElement {
    const revoke = key.revoked_at
      ? null
      : h("button", { type: "button", class: "danger", onclick: () => void this.revoke(key) }, `Revoke ${key.name}`);
    return h(
      "tr",
      { "data-key": key.name },
      h("th", { scope: "row" }, key.name),
      h("td", {}, h("code", {}, `${key.hint}…`)),
      h("td", {}, key.scope),
      h("td", {}, key.device_prefix ?? ""),
      h("td", {}, key.rate === null ? "default" : `${key.rate} / ${key.burst}`),
      h("td", {}, timeElement(key.created_at)),
      h("td", {}, key.revoked_at ? timeElement(key.revoked_at) : ""),
      h("td", {}, revoke),
    );
  }

  private requestBody(): Record<string, unknown> {
    return {
      name: this.name.value.trim(),
      scope: this.scope.value,
      device_prefix: this.prefix.value || null,
      rate: this.rate.value ? Number(this.rate.value) : null,
      burst: this.burst.value ? Number(this.burst.value) : null,
    };
  }

  private async create(event: Event): Promise<void> {
    event.preventDefault();
    replace(this.problem);
    try {
      const key = await sendJson<Key & { key: string }>("POST", "/api/keys", this.requestBody());
      this.showCreated(key.name, key.key);
      (event.target as HTMLFormElement).reset();
      await this.list();
    } catch (error) {
      this.showProblem(error);
    }
  }

  private showCreated(name: string, secret: string): void {
    const value = h("input", { id: "created-key", readonly: true, value: secret, class: "secret" });
    const copied = h("span", { class: "copied", "aria-live": "polite" });
    const copy = h("button", { type: "button" }, "Copy");
    copy.addEventListener("click", async () => {
      value.select();
      try {
        await navigator.clipboard.writeText(secret);
        copied.textContent = "Copied.";
      } catch {
        copied.textContent = "Selected: press Ctrl+C to copy.";
      }
    });
    replace(
      this.created,
      h("p", {}, `Key "${name}" created. Copy it now: it is not shown again.`),
      h("label", { for: "created-key", class: "visually-hidden" }, "New key"),
      value,
      copy,
      copied,
    );
  }

  private async revoke(key: Key): Promise<void> {
    if (!confirm(`Revoke the key "${key.name}"? Whoever uses it is refused from now on.`)) return;
    try {
      await sendJson("DELETE", `/api/keys/${encodeURIComponent(key.name)}`);
      await this.list();
    } catch (error) {
      this.showProblem(error);
    }
  }

  private showProblem(error: unknown): void {
    const details = error instanceof ApiError ? (error.body.detail ?? []) : [];
    replace(
      this.problem,
      h("p", {}, error instanceof Error ? error.message : String(error)),
      details.length ? h("ul", {}, ...details.map((d) => h("li", {}, `${d.field ?? ""}: ${d.message ?? d.rule ?? ""}`))) : null,
    );
  }
}
