// Reference images: uploaded by drag-and-drop (a signed PUT straight to the bucket, registered
// by the bucket's finalize event) or through the API (multipart POST /v1/uploads), into the
// selected session; the caller's library, newest first, each one picked for the next
// generation or deleted.

import { ApiError, failure, unreachable } from "./api.js";
import { act, h, report } from "./dom.js";
import { PagedList } from "./pages.js";

const PAGE = 24;
// No blocking read tells when the bucket event has registered an object, so the list is read
// again after each of these delays, 30 s in all, and the wait ends at the first sight of it.
const REGISTRATION_CHECKS_MS = [250, 500, 1000, 2000, 4000, 6000, 8000, 8000];

export class References extends PagedList {
  constructor(api, onPick) {
    super(api, "reference-list", "more-references", PAGE);
    this.onPick = onPick;
    this.uploads = document.getElementById("uploads");
    this.session = null;
    this.chosen = new Set();
    this.wire();
  }

  path() {
    return "/v1/reference-images";
  }

  wire() {
    const zone = document.getElementById("drop-zone");
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("over");
      for (const file of event.dataTransfer.files) this.track(file, "signed PUT", (step) => this.putToBucket(file, step));
    });
    const input = document.getElementById("file");
    input.addEventListener("change", () => {
      for (const file of input.files) this.track(file, "multipart", () => this.postToApi(file));
      input.value = "";
    });
  }

  picked() {
    return [...this.chosen];
  }

  loaded() {
    const known = new Set(this.items.map((r) => r.id));
    for (const id of this.chosen) if (!known.has(id)) this.chosen.delete(id);
  }

  render() {
    super.render();
    this.onPick(this.chosen.size);
  }

  entry(reference) {
    const pick = h("input", {
      type: "checkbox",
      checked: this.chosen.has(reference.id),
      "aria-label": `Use ${reference.file_name} as a reference`,
      onchange: () => {
        if (pick.checked) this.chosen.add(reference.id);
        else this.chosen.delete(reference.id);
        this.onPick(this.chosen.size);
      },
    });
    const remove = h("button", { type: "button", class: "danger small" }, "Delete");
    remove.addEventListener("click", () => act(remove, () => this.remove(reference)));
    return h(
      "li",
      { dataset: { referenceId: reference.id } },
      h("img", { src: reference.url, alt: reference.file_name, class: "thumb" }),
      h("label", { class: "check" }, pick, `${reference.file_name} · ${reference.width}×${reference.height}`),
      remove,
    );
  }

  async remove(reference) {
    await this.api.delete(`/v1/reference-images/${reference.id}`);
    this.chosen.delete(reference.id);
    await this.load();
  }

  // Show the upload while `upload(step)` runs (it may name its steps); then the library.
  async track(file, how, upload) {
    const line = h("li", {}, `${file.name} (${how}): uploading…`);
    this.uploads.append(line);
    try {
      await upload((step) => (line.textContent = `${file.name} (${how}): ${step}…`));
      await this.load();
    } catch (error) {
      report(error);
    } finally {
      line.remove();
    }
  }

  async putToBucket(file, step) {
    const ticket = await this.api.post("/v1/uploads/signed-url", {
      file_name: file.name,
      mime_type: file.type,
      file_size: file.size,
      ...(this.session && { session_id: this.session.id }),
    });
    const request = `${ticket.method} ${new URL(ticket.upload_url).pathname}`;
    let answer;
    try {
      answer = await fetch(ticket.upload_url, { method: ticket.method, headers: ticket.headers, body: file });
    } catch (error) {
      throw unreachable(request, ticket.upload_url, error);
    }
    if (!answer.ok) throw await failure(request, answer);
    step("waiting for the bucket event to register it");
    await this.registered(ticket.gcp_bucket_path);
  }

  async registered(path) {
    for (const delay of REGISTRATION_CHECKS_MS) {
      await new Promise((resolve) => setTimeout(resolve, delay));
      const page = await this.page(this.path());
      if (page.items.some((reference) => reference.gcp_bucket_path === path)) return;
    }
    const why = `${path} was stored but not registered within 30 s: the upload function may have
      refused it (make logs SERVICE=register-upload)`;
    throw new ApiError("GET /v1/reference-images", 0, "not_registered", why.replace(/\s+/g, " "));
  }

  async postToApi(file) {
    const form = new FormData();
    form.append("file", file);
    if (this.session) form.append("session_id", this.session.id);
    await this.api.call("POST", "/v1/uploads", { form });
  }
}
