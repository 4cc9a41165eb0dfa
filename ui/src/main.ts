/** The log explorer at /ui: who is signed in, the header, and which page the path shows. */

import "./style.css";
import { authedFetch } from "./api";
import { h, replace } from "./dom";
import { FleetPage } from "./fleet";
import { KeysPage } from "./keys";
import { NAVIGATED, interceptLinks } from "./router";
import { SearchPage } from "./search";
import { SIGNED_OUT, isAdmin, signOut, type Identity } from "./session";
import { SignInPage } from "./signin";
import { BASE } from "./state";

interface Page {
  element: HTMLElement;
  show(): void;
}

const root = document.getElementById("app") as HTMLElement;
const main = h("main", { id: "main" });
const nav = h("nav", { "aria-label": "Pages" });
const who = h("div", { class: "who" });
const search = new SearchPage();
const fleet = new FleetPage();
const keys = new KeysPage();
const signin = new SignInPage(() => void start(nextPath()));
let identity: Identity | null = null;

function nextPath(): string {
  return new URLSearchParams(location.search).get("next") ?? BASE;
}

function notFound(text: string): Page {
  return { element: h("div", { class: "message-page" }, h("h1", {}, text), h("a", { href: BASE, "data-link": true }, "Back to search")), show() {} };
}

function pageFor(path: string): Page {
  const name = path.startsWith(BASE) ? path.slice(BASE.length).replace(/\/$/, "") : "";
  if (name === "") return search;
  if (name === "fleet") return fleet;
  if (name === "keys") return identity && isAdmin(identity) ? keys : notFound("Only admins manage API keys.");
  return notFound("No such page.");
}

function renderHeader(): void {
  const links: [string, string][] = [[BASE, "Search"], [`${BASE}fleet`, "Fleet"]];
  if (identity && isAdmin(identity)) links.push([`${BASE}keys`, "API keys"]);
  replace(
    nav,
    ...links.map(([href, label]) => {
      const current = href === BASE ? location.pathname === BASE : location.pathname.startsWith(href);
      return h("a", { href, "data-link": true, "aria-current": current ? "page" : null }, label);
    }),
    h("a", { href: "/docs" }, "API docs"),
  );
  if (identity === null) return replace(who);
  const out = h("button", { type: "button", class: "link" }, "Sign out");
  out.addEventListener("click", () => {
    signOut();
    void start(BASE);
  });
  replace(who, h("span", {}, identity.kind === "open" ? "open mode" : identity.name), identity.kind === "user" ? out : null);
}

function route(): void {
  if (identity === null) return;
  const page = pageFor(location.pathname);
  renderHeader();
  replace(main, page.element);
  page.show();
}

/** Asks who we are: a 401 means auth is on and nobody is signed in in this tab. */
async function start(path: string): Promise<void> {
  const response = await authedFetch("/api/auth/me");
  if (response.status === 401) return;
  identity = (await response.json()) as Identity;
  history.replaceState(null, "", path);
  route();
}

function showSignIn(): void {
  identity = null;
  const here = location.pathname + location.search;
  const next = here.startsWith(`${BASE}signin`) ? nextPath() : here;
  history.replaceState(null, "", `${BASE}signin?next=${encodeURIComponent(next)}`);
  renderHeader();
  replace(main, signin.element);
  signin.show();
}

document.addEventListener("keydown", (event) => {
  const typing = event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement;
  if (event.key === "/" && !typing && main.contains(search.element)) {
    event.preventDefault();
    search.focus();
  }
});
window.addEventListener(SIGNED_OUT, showSignIn);
window.addEventListener(NAVIGATED, route);
window.addEventListener("popstate", route);

replace(
  root,
  h("a", { href: "#main", class: "skip" }, "Skip to content"),
  h("header", { class: "top" }, h("a", { href: BASE, class: "brand", "data-link": true }, "fleetlog"), nav, who),
  main,
);
interceptLinks(root);
void start(location.pathname.startsWith(`${BASE}signin`) ? nextPath() : location.pathname + location.search);
