/**
 * A typed client for the chat API: openapi-fetch over the types that openapi-typescript generates from
 * `openapi/openapi.json` into `schema.d.ts` (`make openapi` regenerates both; never edit schema.d.ts).
 *
 *     const chat = createChatClient({ baseUrl: "http://127.0.0.1:8080", token: () => myToken });
 *     const { data, error, response } = await chat.GET("/api/v1/rooms/{room_id}/messages", {
 *       params: { path: { room_id: 1 }, query: { limit: 50 } },
 *     });
 *
 * Every path, parameter, body and response is checked by the compiler against the spec. Errors come
 * back as `error` (an RFC 9457 `Problem` with a stable `code`), never as an exception; only a network
 * failure throws.
 */
import createClient, { type Client, type Middleware } from "openapi-fetch";

import type { components, paths } from "./schema.js";

/** The API's named schemas, for annotations in caller code. */
export type Schemas = components["schemas"];
export type User = Schemas["User"];
export type Room = Schemas["Room"];
export type Message = Schemas["Message"];
export type MessagePage = Schemas["MessagePage"];
export type TokenResponse = Schemas["TokenResponse"];
export type Problem = Schemas["Problem"];

export type ChatClient = Client<paths>;

export interface ChatClientOptions {
  /** The server's origin, e.g. `http://127.0.0.1:8080` (the spec's paths carry the `/api/v1` prefix). */
  baseUrl: string;
  /**
   * Returns the bearer token for each request: a user's access token (JWT) or an API token
   * (`chat_pat_...`). A function, not a string, so that a token obtained or refreshed later is used
   * by the same client. Requests go without `Authorization` while it returns `undefined`.
   */
  token?: () => string | undefined;
  /** Another `fetch` (tests, proxies); defaults to the global one. */
  fetch?: typeof globalThis.fetch;
}

/** An openapi-fetch client for the chat API that sends `Authorization: Bearer <token>`. */
export function createChatClient(options: ChatClientOptions): ChatClient {
  const client = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const token = options.token;
  if (token) {
    const bearer: Middleware = {
      onRequest({ request }) {
        const value = token();
        // A header set explicitly on one call (another user's token, say) wins over the default.
        if (value !== undefined && !request.headers.has("Authorization")) {
          request.headers.set("Authorization", `Bearer ${value}`);
        }
        return request;
      },
    };
    client.use(bearer);
  }
  return client;
}
