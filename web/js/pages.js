// A list read a page at a time (`?limit=&cursor=` in, `{items, next_cursor}` out, as every list
// of the API): its "more" button reads the next page, and the list is read again shortly
// before the first of its signed URLs expires. A subclass says where the list is (`path()`,
// null when there is none to show) and how an item is shown (`entry(item)`).

import { act, renewBefore, report } from "./dom.js";

export class PagedList {
  constructor(api, listId, moreId, pageSize) {
    this.api = api;
    this.list = document.getElementById(listId);
    this.more = document.getElementById(moreId);
    this.pageSize = pageSize;
    this.items = [];
    this.cursor = null;
    this.timer = undefined;
    this.more.addEventListener("click", () => act(this.more, () => this.load(this.cursor)));
  }

  // The first page (again: counts, thumbnails and order change), or the page after `cursor`
  // added to what is shown.
  async load(cursor = null) {
    const path = this.path();
    if (!path) return;
    const page = await this.page(path, cursor);
    if (path !== this.path()) return; // another list was picked meanwhile
    this.items = cursor ? [...this.items, ...page.items] : page.items;
    this.cursor = page.next_cursor;
    this.loaded();
    this.render();
  }

  page(path, cursor = null) {
    const after = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
    return this.api.get(`${path}?limit=${this.pageSize}${after}`);
  }

  // After a page is read, before it is shown.
  loaded() {}

  render() {
    this.list.replaceChildren(...this.items.map((item) => this.entry(item)));
    this.more.hidden = !this.cursor;
    this.timer = renewBefore(this.timer, this.items, () => this.load().catch(report));
  }
}
