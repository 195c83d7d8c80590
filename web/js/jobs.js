// A session's generation jobs, newest first; each one followed while it runs by blocking reads:
// GET /v1/generations/{id} with If-None-Match (its last ETag) and Prefer: wait=50 answers as
// soon as the job changes (its status, a shot recorded), or 304 after 50 s. No polling loop.
// Cancel a running job; retry a failed or cancelled one.

import { act, h, plural, report } from "./dom.js";

const PAGE = 20;
const WAIT_SECONDS = 50;
// Chromium opens at most 6 connections to one origin and a blocking read holds one: follow at
// most 4 jobs at once (the rest as reads end), so that other calls still get through.
const MAX_FOLLOWED = 4;
const FINISHED = new Set(["completed", "failed", "cancelled"]);

export class Jobs {
  constructor(api, onChange) {
    this.api = api;
    this.onChange = onChange;
    this.list = document.getElementById("job-list");
    this.following = new Map(); // job id -> the AbortController of its reads
    this.waiting = []; // job ids to follow when a read ends
  }

  // The session's jobs (none for null); the unfinished ones followed.
  async show(session) {
    this.stop();
    this.list.replaceChildren();
    if (!session) return;
    const page = await this.api.get(`/v1/sessions/${session.id}/generations?limit=${PAGE}`);
    this.list.replaceChildren(...page.items.map((job) => this.card(job)));
    for (const job of page.items) if (!FINISHED.has(job.status)) this.follow(job.id);
  }

  stop() {
    this.waiting = [];
    for (const controller of this.following.values()) controller.abort();
    this.following.clear();
  }

  // A job just created or retried: shown, and followed from now on.
  add(job) {
    this.place(job);
    this.follow(job.id);
  }

  // Show the job's card, in place of the one it had.
  place(job) {
    const card = this.card(job);
    const old = this.list.querySelector(`[data-job-id="${job.id}"]`);
    if (old) old.replaceWith(card);
    else this.list.prepend(card);
  }

  // Follow from scratch (reads of it still under way are dropped: they may end on an older state).
  follow(id) {
    this.following.get(id)?.abort();
    this.following.delete(id);
    this.waiting = this.waiting.filter((other) => other !== id);
    if (this.following.size < MAX_FOLLOWED) this.read(id);
    else this.waiting.push(id);
  }

  async read(id) {
    const controller = new AbortController();
    this.following.set(id, controller);
    let etag = null;
    try {
      for (;;) {
        const headers = etag ? { "If-None-Match": etag, Prefer: `wait=${WAIT_SECONDS}` } : {};
        const path = `/v1/generations/${id}`;
        const answer = await this.api.call("GET", path, { headers, signal: controller.signal });
        if (answer.status === 304) continue; // no change within the wait: wait again
        etag = answer.etag;
        this.place(answer.body);
        this.onChange(answer.body);
        if (FINISHED.has(answer.body.status)) break;
      }
    } catch (error) {
      if (error.name !== "AbortError") report(error);
    } finally {
      if (this.following.get(id) === controller) {
        this.following.delete(id);
        if (this.waiting.length) this.read(this.waiting.shift());
      }
    }
  }

  card(job) {
    const { done, total } = job.progress;
    const actions = [];
    if (!FINISHED.has(job.status)) actions.push(this.action("Cancel", () => this.cancel(job)));
    if (job.status === "failed" || job.status === "cancelled") {
      actions.push(this.action("Retry", () => this.retry(job)));
    }
    return h(
      "li",
      { class: `job ${job.status}`, dataset: { jobId: job.id, status: job.status } },
      h("p", { class: "prompt" }, job.prompt),
      h("p", { class: "settings" }, settings(job)),
      h(
        "p",
        { class: "state" },
        h("span", { class: "status" }, job.status),
        h("progress", { max: total, value: done }),
        h("span", { class: "done" }, `${done}/${total}`),
        job.generation_method && ` · ${job.generation_method} ${job.model_used ?? ""}`,
      ),
      job.error_message && h("p", { class: "error" }, job.error_message),
      job.images?.length > 0 &&
        h(
          "div",
          { class: "shots" },
          ...job.images.map((image) =>
            h("img", { src: image.thumbnail_url ?? image.url, alt: `shot ${image.generation_index}` }),
          ),
        ),
      h("div", { class: "actions" }, ...actions),
    );
  }

  action(label, run) {
    const button = h("button", { type: "button" }, label);
    button.addEventListener("click", () => act(button, run));
    return button;
  }

  async cancel(job) {
    this.place(await this.api.post(`/v1/generations/${job.id}/cancel`));
  }

  async retry(job) {
    this.add(await this.api.post(`/v1/generations/${job.id}/retry`));
  }
}

// "wide · low angle · cinematic · 16:9 · 4 shots · 1 reference"
function settings(job) {
  const references = job.reference_images ?? job.reference_image_ids ?? [];
  return [
    job.shot_type,
    job.camera_angle,
    job.style,
    job.location,
    job.lighting,
    job.weather,
    job.aspect_ratio,
    plural(job.number_of_shots, "shot"),
    references.length && plural(references.length, "reference"),
    job.is_custom_enabled && "custom",
  ]
    .filter(Boolean)
    .map((value) => String(value).replace(/_/g, " "))
    .join(" · ");
}
