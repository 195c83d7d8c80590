// A session's gallery (GET /v1/sessions/{id}/images: newest job first, then by shot), each image
// opening in full and deletable (DELETE /v1/images/{id}; 409 while its job is unfinished).

import { act, h, renewBefore, report } from "./dom.js";

const PAGE = 24;

export class Gallery {
  constructor(api, onDelete) {
    this.api = api;
    this.onDelete = onDelete;
    this.list = document.getElementById("gallery");
    this.more = document.getElementById("more-images");
    this.session = null;
    this.items = [];
    this.cursor = null;
    this.timer = undefined;
    this.more.addEventListener("click", () => act(this.more, () => this.load(this.cursor)));
  }

  async show(session) {
    this.session = session;
    this.items = [];
    this.render();
    if (session) await this.load();
  }

  // The first page (again), or the page after `cursor` added to what is shown.
  async load(cursor = null) {
    const after = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
    const session = this.session;
    if (!session) return;
    const page = await this.api.get(`/v1/sessions/${session.id}/images?limit=${PAGE}${after}`);
    if (session !== this.session) return; // another session was picked meanwhile
    this.items = cursor ? [...this.items, ...page.items] : page.items;
    this.cursor = page.next_cursor;
    this.render();
  }

  render() {
    this.list.replaceChildren(...this.items.map((image) => this.entry(image)));
    this.more.hidden = !this.cursor;
    this.timer = renewBefore(this.timer, this.items, () => this.load().catch(report));
  }

  entry(image) {
    const remove = h("button", { type: "button", class: "danger small" }, "Delete");
    remove.addEventListener("click", () => act(remove, () => this.remove(image)));
    return h(
      "li",
      { dataset: { imageId: image.id, jobId: image.generation_job_id } },
      h(
        "a",
        { href: image.url, target: "_blank", rel: "noopener" },
        h("img", { src: image.thumbnail_url ?? image.url, alt: image.prompt_used ?? "", class: "thumb" }),
      ),
      h("span", { class: "caption" }, `#${image.generation_index} · ${image.width}×${image.height}`),
      remove,
    );
  }

  async remove(image) {
    await this.api.delete(`/v1/images/${image.id}`);
    await this.load();
    this.onDelete(image);
  }
}
