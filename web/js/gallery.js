// A session's gallery (GET /v1/sessions/{id}/images: newest job first, then by shot), each image
// opening in full and deletable (DELETE /v1/images/{id}; 409 while its job is unfinished).

import { act, h } from "./dom.js";
import { PagedList } from "./pages.js";

const PAGE = 24;

export class Gallery extends PagedList {
  constructor(api, onDelete) {
    super(api, "gallery", "more-images", PAGE);
    this.onDelete = onDelete;
    this.session = null;
  }

  path() {
    return this.session && `/v1/sessions/${this.session.id}/images`;
  }

  async show(session) {
    this.session = session;
    this.items = [];
    this.render();
    await this.load();
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
