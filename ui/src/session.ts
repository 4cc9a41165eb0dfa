/**
 * Sign-in with the OAuth2 password flow, and the refresh of its tokens.
 *
 * Tokens live in this tab's sessionStorage, so each tab is its own sign-in: a refresh token
 * works once, and two tabs sharing one would race and end the session as stolen
 * (docs/security.md). Within a tab, every refresh goes through one promise.
 */

const STORE = "fleetlog.tokens";
export const SIGNED_OUT = "fleetlog:signed-out";

interface Tokens {
  access_token: string;
  refresh_token: string;
}

export interface Identity {
  kind: "key" | "user" | "open";
  name: string;
  grants: string[];
  device_prefix: string | null;
}

let refreshing: Promise<boolean> | null = null;

function tokens(): Tokens | null {
  const stored = sessionStorage.getItem(STORE);
  return stored ? (JSON.parse(stored) as Tokens) : null;
}

export function authorization(): Record<string, string> {
  const held = tokens();
  return held ? { Authorization: `Bearer ${held.access_token}` } : {};
}

async function tokenRequest(form: Record<string, string>): Promise<Response> {
  const response = await fetch("/api/auth/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form),
  });
  if (response.ok) sessionStorage.setItem(STORE, JSON.stringify(await response.json()));
  return response;
}

/** Signs in; answers the server's message when it refuses. */
export async function signIn(username: string, password: string): Promise<string | null> {
  const response = await tokenRequest({ grant_type: "password", username, password });
  if (response.ok) return null;
  const body = (await response.json().catch(() => ({}))) as { message?: string };
  return body.message ?? `sign-in failed (${response.status})`;
}

/** Trades the refresh token for a new pair, once however many requests ask at the same time. */
export function refreshOnce(): Promise<boolean> {
  const held = tokens();
  if (held === null) return Promise.resolve(false);
  refreshing ??= tokenRequest({ grant_type: "refresh_token", refresh_token: held.refresh_token })
    .then((response) => {
      if (!response.ok) sessionStorage.removeItem(STORE);
      return response.ok;
    })
    .catch(() => false)
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

export function signOut(): void {
  sessionStorage.removeItem(STORE);
}

export function signedOut(): void {
  signOut();
  window.dispatchEvent(new Event(SIGNED_OUT));
}

export function isAdmin(identity: Identity): boolean {
  return identity.grants.includes("admin");
}
