/**
 * Live tail: `GET /api/tail` read as Server-Sent Events through fetch, since EventSource cannot
 * send the Authorization header. A broken stream is resumed with Last-Event-ID, so the server
 * replays what was missed (docs/tail.md).
 */

import { authedFetch, errorOf, withParams } from "./api";
import type { Log } from "./logs";

export interface TailHandlers {
  onLog: (log: Log) => void;
  onDropped: (dropped: number) => void;
  onStatus: (status: string) => void;
}

interface ServerEvent {
  event: string;
  data: string;
  id: string;
}

const RECONNECT_MS = 1000;

export function parseEvents(buffer: string): [ServerEvent[], string] {
  const blocks = buffer.replace(/\r\n?/g, "\n").split("\n\n");
  const rest = blocks.pop() ?? "";
  const events = blocks.flatMap((block) => {
    const event: ServerEvent = { event: "message", data: "", id: "" };
    let fields = 0;
    for (const line of block.split("\n")) {
      if (line.startsWith(":") || !line) continue;
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (name === "event") event.event = value;
      else if (name === "data") event.data = event.data ? `${event.data}\n${value}` : value;
      else if (name === "id") event.id = value;
      else continue;
      fields += 1;
    }
    return fields ? [event] : [];
  });
  return [events, rest];
}

export class LiveTail {
  private controller: AbortController | null = null;
  private lastEventId = "";

  constructor(private readonly handlers: TailHandlers) {}

  get running(): boolean {
    return this.controller !== null;
  }

  start(q: string): void {
    this.stop();
    const controller = new AbortController();
    this.controller = controller;
    this.lastEventId = "";
    void this.run(q, controller.signal);
  }

  stop(): void {
    this.controller?.abort();
    this.controller = null;
  }

  private async run(q: string, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.follow(q, signal);
      } catch (error) {
        if (signal.aborted) return;
        this.handlers.onStatus(error instanceof Error ? error.message : "the tail stopped");
        if (error instanceof TailRefused) return this.stop();
      }
      if (signal.aborted) return;
      this.handlers.onStatus("reconnecting…");
      await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
    }
  }

  private async follow(q: string, signal: AbortSignal): Promise<void> {
    const headers: Record<string, string> = this.lastEventId ? { "Last-Event-ID": this.lastEventId } : {};
    const response = await authedFetch(withParams("/api/tail", { q }), { signal, headers });
    if (!response.ok) {
      const error = await errorOf(response);
      if (response.status === 429 || response.status >= 500) throw error;
      throw new TailRefused(error.message);
    }
    if (response.body === null) throw new Error("the tail sent no stream");
    this.handlers.onStatus("live");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const [events, rest] = parseEvents(buffer + value);
      buffer = rest;
      events.forEach((event) => this.dispatch(event));
    }
  }

  private dispatch(event: ServerEvent): void {
    if (event.event === "log") {
      this.lastEventId = event.id || this.lastEventId;
      this.handlers.onLog(JSON.parse(event.data) as Log);
    } else if (event.event === "dropped") {
      this.handlers.onDropped((JSON.parse(event.data) as { dropped: number }).dropped);
    }
  }
}

/** The server refused the tail for good (a bad query, no right to read): no point retrying. */
class TailRefused extends Error {}
