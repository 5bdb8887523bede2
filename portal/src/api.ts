// Calls to CURE's API. The access token lives in memory only (see session.ts); a 401 triggers
// one refresh through the HttpOnly cookie, then the call is tried again.

import type { Geometry } from "geojson";

import { session } from "./session";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly detail: unknown,
  ) {
    super(describe(error, detail));
  }
}

function describe(error: string, detail: unknown): string {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((item) => {
        if (typeof item === "string") return item;
        if (item && typeof item === "object" && "msg" in item) {
          const where = Array.isArray((item as { loc?: unknown[] }).loc)
            ? (item as { loc: unknown[] }).loc.filter((p) => p !== "body").join(".")
            : "";
          return where ? `${where}: ${(item as { msg: string }).msg}` : (item as { msg: string }).msg;
        }
        return JSON.stringify(item);
      })
      .join("; ");
  }
  return error;
}

async function errorOf(response: Response): Promise<ApiError> {
  let body: Record<string, unknown> = {};
  try {
    body = (await response.json()) as Record<string, unknown>;
  } catch {
    /* not JSON */
  }
  const error = String(body.error ?? response.statusText ?? "error");
  const detail = body.detail ?? body.error_description ?? body.description ?? error;
  return new ApiError(response.status, error, detail);
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  auth?: boolean; // send the access token (default: when logged in)
}

export async function request(path: string, options: RequestOptions = {}): Promise<Response> {
  const send = async (): Promise<Response> => {
    const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
    const token = options.auth === false ? null : session.accessToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    let body: BodyInit | undefined;
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.body);
    }
    return fetch(path, { method: options.method ?? "GET", headers, body, credentials: "same-origin" });
  };
  let response = await send();
  if (response.status === 401 && options.auth !== false && session.accessToken()) {
    if (await session.refresh()) response = await send();
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const response = await request(path, options);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

/** An image (a quicklook) fetched with the token, as an object URL the page may show. */
export async function imageUrl(path: string): Promise<string> {
  const response = await request(path, { headers: { Accept: "image/png" } });
  return URL.createObjectURL(await response.blob());
}

export function query(params: Record<string, string | number | undefined | null | string[]>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => search.append(name, v));
    else search.append(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// -- the API's shapes the portal reads --------------------------------------------------------

export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
}

export interface App {
  id: string;
  title: string;
  description: string;
  version: string;
  inputs: { role: string; collection: string; product_type: string | null; max_age_days: number }[];
  outputs: { role: string; media_type: string; primary: boolean; title: string | null }[];
  parameters: JsonSchema;
}

export interface OrderEvent {
  status: string;
  at: string;
  actor: string;
  message: string | null;
  progress: number | null;
  attempt: number;
}

export interface OrderAsset {
  role: string;
  title: string | null;
  href: string;
  size: number;
  media_type: string;
  checksum: string;
  primary: boolean;
}

export interface OrderSummary {
  order_id: string;
  app_id: string;
  app_version: string;
  status: string;
  message: string | null;
  progress: number | null;
  attempt: number;
  start_date: string;
  end_date: string;
  created_at: string;
  updated_at: string;
}

export interface Order extends OrderSummary {
  roi: Geometry;
  params: Record<string, unknown>;
  history: OrderEvent[];
  assets: OrderAsset[];
}

export interface Quicklook {
  png: string;
  bounds: [number, number, number, number];
  label: string;
  unit: string | null;
  range: [number, number];
  colormap: { name: string; stops: { at: number; color: string }[] };
  histogram: { edges: number[]; counts: number[] };
  statistics: { count: number; min: number | null; max: number | null; mean: number | null };
}

export interface Place {
  name: string;
  bbox: [number, number, number, number];
}

export const FINAL_STATES = ["SUCCESS", "FAILED", "INVALID", "CANCELLED"];
