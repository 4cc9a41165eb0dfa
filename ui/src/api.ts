/** The public API, as any script would call it: the UI has no endpoint of its own. */

import { authorization, refreshOnce, signedOut } from "./session";

export interface ErrorDetail {
  field?: string;
  rule?: string;
  message?: string;
  position?: number;
}

export interface ErrorBody {
  error: string;
  message: string;
  detail?: ErrorDetail[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody,
  ) {
    super(body.message);
  }
}

export type Params = Record<string, string | number | undefined>;

export function withParams(path: string, params: Params = {}): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== "") search.set(name, String(value));
  }
  const query = search.toString();
  return query ? `${path}?${query}` : path;
}

/**
 * `fetch` with the signed-in credential. A 401 is answered once by refreshing the access
 * token and trying again; if that fails too, the person is sent to sign in.
 */
export async function authedFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const send = () =>
    fetch(path, { ...init, headers: { ...authorization(), ...(init.headers ?? {}) } });
  let response = await send();
  if (response.status === 401 && (await refreshOnce())) response = await send();
  if (response.status === 401) signedOut();
  return response;
}

export async function errorOf(response: Response): Promise<ApiError> {
  let body: ErrorBody;
  try {
    body = (await response.json()) as ErrorBody;
  } catch {
    body = { error: "http_error", message: `${response.status} ${response.statusText}` };
  }
  return new ApiError(response.status, body);
}

export async function getJson<T>(path: string, params?: Params): Promise<T> {
  const response = await authedFetch(withParams(path, params));
  if (!response.ok) throw await errorOf(response);
  return (await response.json()) as T;
}

export async function sendJson<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await authedFetch(path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await errorOf(response);
  return (await response.json()) as T;
}
