/**
 * `ChatSocket`: the chat's WebSocket gateway, with everything a client needs to lose nothing, as the
 * browser app does it:
 *
 * - **Auth** by a single-use ticket (`POST /api/v1/ws/ticket` with the bearer token): no secret in a URL
 *   that outlives a few seconds, and browsers cannot set headers on a WebSocket anyway.
 * - **Reconnect** with full-jitter exponential backoff (a random delay in `[0, min(20 s, 500 ms * 2^n))`,
 *   `n` reset once a connection lasted 10 s). Close 4001 (token expired or revoked): `refresh()`, then
 *   reconnect at once. Close 1012 (the server is draining): reconnect after a random 0.25-3 s, so that a
 *   whole room does not arrive at the next node in the same instant.
 * - **Resume**: after every reconnect each room is subscribed again with `since` = the last seq delivered,
 *   so the server replays exactly what was missed; `truncated` (too much missed) pages the gap over REST.
 *   Messages reach your handler once each, in seq order per room (deduplicated by `(room, seq)`).
 * - **Outbox**: `send()` gives a message a `client_id` and sends it again after each reconnect, or when no
 *   `ack` came in time; the server stores it once and acks a retry with the first copy. A send refused for
 *   now (`rate_limited`, ...) goes again in about 2 s, and later sends wait for it: stored in the order sent.
 *
 *     const socket = new ChatSocket({ baseUrl: "http://127.0.0.1:8080", token: () => accessToken });
 *     socket.on("message", ({ message }) => console.log(message.seq, message.body));
 *     socket.subscribe(roomId, 0);          // 0: from the start; omit for only what comes next
 *     socket.start();
 *     const stored = await socket.send(roomId, "hello");
 *
 * Works in browsers and in Node 20 and later: pass `WebSocket` from the `ws` package where the platform has
 * no global one (Node before 22).
 */
import type { ClientFrame } from "./frames/ClientFrame.js";
import type { Message } from "./frames/Message.js";
import type { ServerFrame } from "./frames/ServerFrame.js";

/** A frame's `type`, and the frame of that type. */
export type FrameType = ServerFrame["type"];
export type FrameOf<T extends FrameType> = Extract<ServerFrame, { type: T }>;

/** What `ChatSocket` needs of a WebSocket: the browser's, Node 22's global one, or the `ws` package's. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason?: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** `connecting` (a ticket or the socket is on its way), `open` (`ready` came), `waiting` (to reconnect),
 * `closed` (not started, `close()`d, or the session ended: the ticket was refused). */
export type ConnectionState = "connecting" | "open" | "waiting" | "closed";

export interface ChatSocketOptions {
  /** The server's origin, e.g. `https://chat.example.org`. */
  baseUrl: string;
  /** The bearer token for tickets and REST paging: an access token (JWT) or an API token. */
  token: () => string | undefined;
  /** On close 4001 (the token expired or was revoked): make `token()` return a fresh one. Throwing ends the
   * socket (`closed`). Without it, the socket reconnects with whatever `token()` returns then. */
  refresh?: () => Promise<void>;
  /** The WebSocket class; defaults to the global one. */
  WebSocket?: WebSocketConstructor;
  fetch?: typeof globalThis.fetch;
}

/** A send the server refused for good (`code` is the problem code: `not_a_member`, `muted`, ...), or that got
 * no answer after three tries (`timeout`). */
export class SendError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "SendError";
    this.code = code;
  }
}

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 20_000;
const STABLE_AFTER_MS = 10_000;
const DRAIN_RECONNECT_MS: [number, number] = [250, 3_000];
const ACK_TIMEOUT_MS = 10_000;
const RETRY_REFUSED_AFTER_MS = 2_000;
const MAX_SEND_TRIES = 3;
const PAGE = 100;
const OPEN = 1;
const CLOSE_NORMAL = 1000;
const CLOSE_RESTARTING = 1012;
const CLOSE_TOKEN_EXPIRED = 4001;
const RETRYABLE = new Set(["rate_limited", "unavailable", "internal"]);

/** Full jitter: uniform in `[0, min(max, base * 2^attempt))`. */
export function backoffDelayMs(attempt: number, random: number = Math.random()): number {
  return random * Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16));
}

/** A random `client_id`. `crypto.randomUUID` exists only in secure contexts (https, localhost) in browsers;
 * `getRandomValues` everywhere. */
function newClientId(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

interface RoomState {
  /** The last seq handed to the `message` handlers; `null` until the server said where the room is. */
  lastSeq: number | null;
  /** Paging a gap over REST: live messages wait in `held`. */
  paging: boolean;
  held: Message[];
}

interface Pending {
  frame: Extract<ClientFrame, { type: "send" }>;
  resolve: (message: Message) => void;
  reject: (error: SendError) => void;
  tries: number;
  /** When it was last written to a socket; `null` while waiting for one. */
  sentAt: number | null;
  /** Refused for now (`rate_limited`, ...): sent again in about 2 s, and the sends made after it wait for
   * that, so that messages are stored in the order they were sent. */
  refused: boolean;
}

type Handler = (frame: never) => void;

export class ChatSocket {
  #options: ChatSocketOptions;
  #WebSocket: WebSocketConstructor | undefined;
  #fetch: typeof globalThis.fetch;
  #ws: WebSocketLike | null = null;
  #state: ConnectionState = "closed";
  #running = false;
  /** Bumped for every socket and on close: events of an older socket are ignored. */
  #generation = 0;
  #attempt = 0;
  #connectedAt: number | null = null;
  #retry: ReturnType<typeof setTimeout> | null = null;
  #ticker: ReturnType<typeof setInterval> | null = null;
  #rooms = new Map<number, RoomState>();
  #outbox = new Map<string, Pending>();
  #handlers = new Map<string, Set<Handler>>();
  #stateHandlers = new Set<(state: ConnectionState) => void>();

  constructor(options: ChatSocketOptions) {
    this.#options = { ...options, baseUrl: options.baseUrl.replace(/\/+$/, "") };
    this.#WebSocket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Connects, and keeps connecting until `close()`. */
  start(): void {
    if (this.#running) return;
    if (!this.#WebSocket) {
      throw new Error("no WebSocket here: pass one (`new ChatSocket({ WebSocket })`, e.g. from the `ws` package)");
    }
    this.#running = true;
    this.#attempt = 0;
    this.#ticker = setInterval(() => this.#resendOverdue(), 1_000);
    void this.#open();
  }

  /** Closes for good; what is still in the outbox is refused with `SendError("closed")`. */
  close(): void {
    this.#running = false;
    this.#generation += 1;
    if (this.#retry) clearTimeout(this.#retry);
    if (this.#ticker) clearInterval(this.#ticker);
    this.#retry = this.#ticker = null;
    this.#ws?.close(CLOSE_NORMAL);
    this.#ws = null;
    for (const pending of this.#outbox.values()) pending.reject(new SendError("closed", "The socket was closed."));
    this.#outbox.clear();
    this.#setState("closed");
  }

  /**
   * Follows a room. `since`: the last seq you already have (0 for everything the server still replays);
   * omitted, only what comes next. Kept across reconnects, resuming from the last seq delivered.
   */
  subscribe(roomId: number, since?: number): void {
    if (!this.#rooms.has(roomId)) this.#rooms.set(roomId, { lastSeq: since ?? null, paging: false, held: [] });
    const room = this.#rooms.get(roomId)!;
    this.#write({ type: "subscribe", room_id: roomId, since: room.lastSeq });
  }

  unsubscribe(roomId: number): void {
    this.#rooms.delete(roomId);
    this.#write({ type: "unsubscribe", room_id: roomId });
  }

  /** The last seq delivered in a room (what a restart of your program would pass as `since`). */
  lastSeq(roomId: number): number | null {
    return this.#rooms.get(roomId)?.lastSeq ?? null;
  }

  /**
   * Sends a message; resolves with it as stored once the server acks it (a retry resolves with the first
   * copy). Queued while disconnected; rejects with `SendError` when refused for good.
   */
  send(roomId: number, body: string, options: { replyTo?: number; clientId?: string } = {}): Promise<Message> {
    const clientId = options.clientId ?? newClientId();
    const frame: Pending["frame"] = { type: "send", room_id: roomId, body, client_id: clientId };
    if (options.replyTo !== undefined) frame.reply_to = options.replyTo;
    return new Promise((resolve, reject) => {
      this.#outbox.set(clientId, { frame, resolve, reject, tries: 0, sentAt: null, refused: false });
      this.#flush(clientId);
    });
  }

  typing(roomId: number): void {
    this.#write({ type: "typing", room_id: roomId });
  }

  read(roomId: number, seq: number): void {
    this.#write({ type: "read", room_id: roomId, seq });
  }

  /** Calls `handler` with every frame of `type` (`message` frames: once each, in seq order per room).
   * Returns a function that removes it. */
  on<T extends FrameType>(type: T, handler: (frame: FrameOf<T>) => void): () => void {
    const set = this.#handlers.get(type) ?? new Set<Handler>();
    this.#handlers.set(type, set);
    set.add(handler as Handler);
    return () => set.delete(handler as Handler);
  }

  /** Calls `handler` on every change of `state`. */
  onState(handler: (state: ConnectionState) => void): () => void {
    this.#stateHandlers.add(handler);
    return () => this.#stateHandlers.delete(handler);
  }

  // ---- the connection ----

  async #open(): Promise<void> {
    this.#setState("connecting");
    const generation = ++this.#generation;
    let ticket: string;
    try {
      const response = await this.#fetch(`${this.#options.baseUrl}/api/v1/ws/ticket`, {
        method: "POST",
        headers: this.#auth(),
      });
      if (response.status === 401) return this.#ended();
      if (!response.ok) throw new Error(`ticket: ${response.status}`);
      ticket = ((await response.json()) as { ticket: string }).ticket;
    } catch {
      if (generation === this.#generation) this.#scheduleRetry();
      return;
    }
    if (generation !== this.#generation || !this.#running) return;
    const url = `${this.#options.baseUrl.replace(/^http/, "ws")}/api/v1/ws?ticket=${encodeURIComponent(ticket)}`;
    let ws: WebSocketLike;
    try {
      ws = new this.#WebSocket!(url);
    } catch {
      return this.#scheduleRetry();
    }
    this.#ws = ws;
    ws.onmessage = (event) => {
      if (generation !== this.#generation) return;
      const text = typeof event.data === "string" ? event.data : String(event.data);
      let frame: ServerFrame;
      try {
        frame = JSON.parse(text) as ServerFrame;
      } catch {
        return;
      }
      this.#onFrame(frame);
    };
    ws.onclose = (event) => {
      if (generation === this.#generation) this.#onClose(event.code);
    };
    ws.onerror = () => {};
  }

  #onClose(code: number): void {
    const lasted = this.#connectedAt === null ? 0 : Date.now() - this.#connectedAt;
    this.#ws = null;
    this.#connectedAt = null;
    if (lasted >= STABLE_AFTER_MS) this.#attempt = 0;
    for (const pending of this.#outbox.values()) pending.sentAt = null;
    if (!this.#running) return;
    if (code === CLOSE_TOKEN_EXPIRED) {
      const refresh = this.#options.refresh;
      if (!refresh) return this.#scheduleRetry(0);
      refresh().then(
        () => this.#scheduleRetry(0),
        () => this.#ended(),
      );
      this.#setState("waiting");
      return;
    }
    if (code === CLOSE_RESTARTING) {
      const [low, high] = DRAIN_RECONNECT_MS;
      return this.#scheduleRetry(low + Math.random() * (high - low));
    }
    this.#scheduleRetry();
  }

  #scheduleRetry(delayMs?: number): void {
    if (!this.#running) return;
    const delay = delayMs ?? backoffDelayMs(this.#attempt);
    this.#attempt += 1;
    this.#setState("waiting");
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      this.#retry = null;
      void this.#open();
    }, delay);
  }

  /** The session is over (the ticket was refused): stop, as the app shows its login. */
  #ended(): void {
    this.close();
  }

  #setState(state: ConnectionState): void {
    if (this.#state === state) return;
    this.#state = state;
    for (const handler of this.#stateHandlers) handler(state);
  }

  #auth(): Record<string, string> {
    const token = this.#options.token();
    return token === undefined ? {} : { authorization: `Bearer ${token}` };
  }

  #write(frame: ClientFrame): boolean {
    const ws = this.#ws;
    if (!ws || ws.readyState !== OPEN || this.#state !== "open") return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  // ---- frames ----

  #onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case "ready":
        this.#connectedAt = Date.now();
        this.#setState("open");
        for (const [roomId, room] of this.#rooms) {
          this.#write({ type: "subscribe", room_id: roomId, since: room.lastSeq });
        }
        for (const clientId of this.#outbox.keys()) this.#flush(clientId);
        break;
      case "subscribed":
        this.#onSubscribed(frame);
        break;
      case "message":
        this.#onMessage(frame.message);
        return; // emitted in order by #deliver
      case "ack":
        this.#outbox.get(frame.client_id)?.resolve(frame.message);
        this.#outbox.delete(frame.client_id);
        break;
      case "error":
        if (frame.client_id) this.#refused(frame.client_id, frame.code, frame.message);
        break;
      case "unsubscribed":
        this.#rooms.delete(frame.room_id);
        break;
      default:
        break;
    }
    this.#emit(frame);
  }

  #emit(frame: ServerFrame): void {
    for (const handler of this.#handlers.get(frame.type) ?? []) (handler as (f: ServerFrame) => void)(frame);
  }

  #onSubscribed({ room_id, last_seq, truncated }: FrameOf<"subscribed">): void {
    const room = this.#rooms.get(room_id);
    if (!room) return;
    if (room.lastSeq === null) {
      room.lastSeq = last_seq;
    } else if (truncated && last_seq > room.lastSeq) {
      void this.#page(room_id, room, last_seq);
    }
  }

  #onMessage(message: Message): void {
    const room = this.#rooms.get(message.room_id);
    if (!room) return;
    if (room.paging) {
      room.held.push(message);
      return;
    }
    this.#deliver(message.room_id, room, message);
  }

  /** Hands `message` on unless held already; a gap before it is paged over REST first. */
  #deliver(roomId: number, room: RoomState, message: Message): void {
    if (room.lastSeq !== null && message.seq <= room.lastSeq) return;
    if (room.lastSeq !== null && message.seq > room.lastSeq + 1) {
      room.held.push(message);
      void this.#page(roomId, room, message.seq - 1);
      return;
    }
    room.lastSeq = message.seq;
    this.#emit({ type: "message", message });
  }

  /** Fetches the room's messages after `room.lastSeq` up to `upTo` over REST, delivers them, then what waited. */
  async #page(roomId: number, room: RoomState, upTo: number): Promise<void> {
    if (room.paging) return;
    room.paging = true;
    try {
      while (room.lastSeq !== null && room.lastSeq < upTo && this.#running) {
        const url = `${this.#options.baseUrl}/api/v1/rooms/${roomId}/messages?after=${room.lastSeq}&limit=${PAGE}`;
        const response = await this.#fetch(url, { headers: this.#auth() });
        if (!response.ok) break;
        const page = (await response.json()) as { items: Message[] };
        if (page.items.length === 0) break;
        for (const message of page.items) {
          if (message.seq > room.lastSeq!) {
            room.lastSeq = message.seq;
            this.#emit({ type: "message", message });
          }
        }
      }
    } catch {
      // The connection will be lost too: the resume after it asks again from `lastSeq`.
    } finally {
      room.paging = false;
      const held = room.held.sort((a, b) => a.seq - b.seq);
      room.held = [];
      for (const message of held) this.#deliver(roomId, room, message);
    }
  }

  // ---- the outbox ----

  #flush(clientId: string): void {
    const pending = this.#outbox.get(clientId);
    if (!pending || this.#heldBack(clientId)) return;
    if (this.#write(pending.frame)) {
      pending.tries += 1;
      pending.sentAt = Date.now();
      pending.refused = false;
    }
  }

  /** True when a send made before this one waits to be sent again after a refusal: this one waits too (the
   * ticker sends it right after), or it would be stored first. The send budget is the user's, in every room. */
  #heldBack(clientId: string): boolean {
    for (const [id, pending] of this.#outbox) {
      if (id === clientId) return false;
      if (pending.refused) return true;
    }
    return false;
  }

  #refused(clientId: string, code: string, message: string): void {
    const pending = this.#outbox.get(clientId);
    if (!pending) return;
    if (RETRYABLE.has(code) && pending.tries < MAX_SEND_TRIES) {
      // Sent again by the ticker in about 2 s.
      pending.sentAt = Date.now() - ACK_TIMEOUT_MS + RETRY_REFUSED_AFTER_MS;
      pending.refused = true;
      return;
    }
    this.#outbox.delete(clientId);
    pending.reject(new SendError(code, message));
  }

  /** In the order sent: what is due again, and what waited behind a refused send (or for a socket). */
  #resendOverdue(): void {
    const now = Date.now();
    for (const [clientId, pending] of this.#outbox) {
      if (pending.sentAt === null) {
        this.#flush(clientId);
        continue;
      }
      if (now - pending.sentAt < ACK_TIMEOUT_MS) continue;
      if (pending.tries >= MAX_SEND_TRIES) {
        this.#outbox.delete(clientId);
        pending.reject(new SendError("timeout", "No answer from the server."));
        continue;
      }
      this.#flush(clientId);
    }
  }
}
