// The public HTTP API as a browser calls it: a bearer token, JSON in and out, every failure an
// ApiError that says what was asked and what the API (or the network) answered.

export class ApiError extends Error {
  constructor(request, status, code, message, { details = null, retryAfter = null } = {}) {
    super(message);
    this.name = "ApiError";
    Object.assign(this, { request, status, code, details, retryAfter });
  }

  // "PATCH /v1/sessions/…: 400 invalid_input: the body has invalid fields (title: …)"
  describe() {
    let problems = [];
    if (Array.isArray(this.details)) {
      problems = this.details.map((d) => (d.field ? `${d.field}: ${d.problem}` : JSON.stringify(d)));
    } else if (this.details) {
      problems = [JSON.stringify(this.details)];
    }
    const status = this.status ? `${this.status} ` : "";
    let text = `${this.request}: ${status}${this.code}: ${this.message}`;
    if (problems.length) text += ` (${problems.join("; ")})`;
    if (this.retryAfter) text += ` (retry after ${this.retryAfter} s)`;
    return text;
  }
}

// A fetch that failed before any answer: the server is down, or a CORS check refused it.
export function unreachable(request, url, error) {
  const why = `could not reach ${new URL(url).origin} (${error.message}): is the stack up, and
    does it answer CORS for ${location.origin}?`;
  return new ApiError(request, 0, "network_error", why.replace(/\s+/g, " "));
}

// The ApiError for an answer that is not ok: the API's {"error": {code, message, details}}, or
// whatever else came (a proxy's page, the bucket's XML), shortened.
export async function failure(request, answer) {
  const text = await answer.text();
  const retryAfter = answer.headers.get("Retry-After");
  try {
    const { error } = JSON.parse(text);
    return new ApiError(request, answer.status, error.code, error.message, {
      details: error.details,
      retryAfter,
    });
  } catch {
    return new ApiError(request, answer.status, "http_error", text.slice(0, 300) || answer.statusText, {
      retryAfter,
    });
  }
}

export class Api {
  constructor(baseUrl, token, onUnauthenticated) {
    Object.assign(this, { baseUrl, token, onUnauthenticated });
  }

  // {status, etag, body} for a 2xx or a 304; an ApiError otherwise. `json` is sent as JSON,
  // `form` (FormData) as multipart.
  async call(method, path, { json, form, headers = {}, signal } = {}) {
    const request = `${method} ${path}`;
    const init = {
      method,
      headers: { Authorization: `Bearer ${this.token}`, ...headers },
      cache: "no-store",
      signal,
    };
    if (json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    } else if (form) {
      init.body = form;
    }
    let answer;
    try {
      answer = await fetch(this.baseUrl + path, init);
    } catch (error) {
      throw error.name === "AbortError" ? error : unreachable(request, this.baseUrl, error);
    }
    if (!answer.ok && answer.status !== 304) {
      if (answer.status === 401) this.onUnauthenticated();
      throw await failure(request, answer);
    }
    const hasBody = answer.status !== 204 && answer.status !== 304;
    return {
      status: answer.status,
      etag: answer.headers.get("ETag"),
      body: hasBody ? await answer.json() : null,
    };
  }

  async get(path, options) {
    return (await this.call("GET", path, options)).body;
  }

  async post(path, json) {
    return (await this.call("POST", path, { json })).body;
  }

  async patch(path, json) {
    return (await this.call("PATCH", path, { json })).body;
  }

  async delete(path) {
    await this.call("DELETE", path);
  }
}
