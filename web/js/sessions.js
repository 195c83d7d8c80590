// The session list (most recently active first, as GET /v1/sessions orders it) with each
// session's thumbnail and image count; create, rename and delete; which one is selected.

import { act, h, plural } from "./dom.js";
import { PagedList } from "./pages.js";

const PAGE = 30;

export class Sessions extends PagedList {
  constructor(api, onSelect) {
    super(api, "session-list", "more-sessions", PAGE);
    this.onSelect = onSelect;
    this.selected = null;
    this.wire();
  }

  path() {
    return "/v1/sessions";
  }

  wire() {
    const create = document.getElementById("new-session");
    create.addEventListener("click", () => act(create, () => this.create()));
    const rename = document.getElementById("rename");
    rename.addEventListener("submit", (event) => {
      event.preventDefault();
      act(rename.querySelector("button"), () => this.rename(rename.elements.title.value));
    });
    const remove = document.getElementById("delete-session");
    remove.addEventListener("click", () => {
      const { title, generated_count: count } = this.selected;
      if (confirm(`Delete "${title}" and its ${plural(count, "image")}?`)) act(remove, () => this.remove());
    });
  }

  loaded() {
    this.selected = this.items.find((s) => s.id === this.selected?.id) ?? this.selected;
  }

  entry(session) {
    const chosen = session.id === this.selected?.id;
    const thumbnail = session.thumbnail_url
      ? h("img", { src: session.thumbnail_url, alt: "", class: "thumb" })
      : h("span", { class: "thumb empty" });
    return h(
      "li",
      { dataset: { sessionId: session.id }, class: chosen ? "selected" : "" },
      h(
        "button",
        { type: "button", "aria-current": chosen && "true", onclick: () => this.select(session) },
        thumbnail,
        h("span", { class: "title" }, session.title),
        h("span", { class: "count" }, plural(session.generated_count, "image")),
        h("time", { datetime: session.updated_at }, new Date(session.updated_at).toLocaleString()),
      ),
    );
  }

  // Show `session` (or nothing, for null) in the workspace.
  select(session) {
    this.selected = session;
    this.render();
    if (session) document.getElementById("rename").elements.title.value = session.title;
    this.onSelect(session);
  }

  async create() {
    const session = await this.api.post("/v1/sessions", {});
    await this.load();
    this.select(session);
  }

  async rename(title) {
    this.selected = await this.api.patch(`/v1/sessions/${this.selected.id}`, { title });
    await this.load();
  }

  async remove() {
    await this.api.delete(`/v1/sessions/${this.selected.id}`);
    this.selected = null;
    await this.load();
    this.select(this.items[0] ?? null);
  }
}
