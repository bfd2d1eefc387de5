// The REST API and the server-sent event stream, with the token kept in sessionStorage.
// Rules: every request carries `Authorization: Bearer <token>`; a 401 forgets the token and
// sends the user back to the sign-in form. Event streams use fetch streaming (so the token
// stays in a header, never in a URL) and reconnect with backoff until the page goes away.

const API = "/api/v1";
const TOKEN_KEY = "tunesmith.token";

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  window.location.reload();
}

function headers(extra = {}) {
  return { Authorization: `Bearer ${token()}`, ...extra };
}

async function fail(response) {
  let detail = response.statusText;
  try {
    detail = (await response.json()).detail ?? detail;
  } catch {
    // not JSON: keep the status text
  }
  if (response.status === 401) signOut();
  throw new ApiError(response.status, detail);
}

export async function get(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) query.append(key, item);
  }
  const qs = query.toString();
  const response = await fetch(`${API}${path}${qs ? `?${qs}` : ""}`, { headers: headers() });
  if (!response.ok) await fail(response);
  return response.json();
}

export async function post(path, body) {
  const response = await fetch(`${API}${path}`, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) await fail(response);
  return response.json();
}

export async function patch(path, body) {
  const response = await fetch(`${API}${path}`, {
    method: "PATCH",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(body),
  });
  if (!response.ok) await fail(response);
  return response.json();
}

// DELETE; resolves when the server answers 2xx (204: no body).
export async function del(path) {
  const response = await fetch(`${API}${path}`, { method: "DELETE", headers: headers() });
  if (!response.ok) await fail(response);
}

// An artifact (or any API file) as an object URL, fetched with the bearer header.
export async function blobUrl(url) {
  const response = await fetch(url, { headers: headers() });
  if (!response.ok) await fail(response);
  return URL.createObjectURL(await response.blob());
}

// Checks a token without keeping it; resolves to true when the server accepts it.
export async function checkToken(candidate) {
  const response = await fetch(`${API}/studies?limit=1`, {
    headers: { Authorization: `Bearer ${candidate}` },
  });
  return response.ok;
}

function parseBlock(block, onEvent) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (data.length) onEvent(event, JSON.parse(data.join("\n")));
}

// Follows GET /studies/{id}/events; calls onEvent(name, data) and onState("live"|"retrying").
export function followStudy(studyId, onEvent, onState = () => {}) {
  let delay = 500;
  async function once() {
    const response = await fetch(`${API}/studies/${studyId}/events`, {
      headers: headers({ Accept: "text/event-stream" }),
      cache: "no-store",
    });
    if (!response.ok) await fail(response);
    onState("live");
    delay = 500;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replaceAll("\r\n", "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        parseBlock(buffer.slice(0, end), onEvent);
        buffer = buffer.slice(end + 2);
      }
    }
  }
  (async () => {
    for (;;) {
      try {
        await once();
      } catch (error) {
        if (error instanceof ApiError && error.status < 500) return;
      }
      onState("retrying");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10000);
    }
  })();
}
