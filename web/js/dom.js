// Small DOM helpers: build elements, show errors to the person, run an action from a button.

// h("li", {class: "x", dataset: {id}, onclick: f}, "text", child): an element with its children.
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name in element) element[name] = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return element;
}

const errors = () => document.getElementById("errors");

// Show an error (an ApiError, or anything thrown) at the top of the page until dismissed.
export function report(error) {
  console.error(error);
  const text = error.describe ? error.describe() : String(error.message || error);
  const item = h("li", {}, h("span", {}, text));
  item.append(h("button", { type: "button", title: "Dismiss", "aria-label": "Dismiss", onclick: () => item.remove() }, "×"));
  errors().prepend(item);
}

export function clearErrors() {
  errors().replaceChildren();
}

// Run `action` for a control: disabled meanwhile, any failure reported.
export async function act(control, action) {
  control.disabled = true;
  try {
    return await action();
  } catch (error) {
    report(error);
  } finally {
    control.disabled = false;
  }
}

// Call `reload` shortly before the first signed URL among `items` expires; returns the timer.
export function renewBefore(timer, items, reload) {
  clearTimeout(timer);
  const expiries = items.map((item) => Date.parse(item.urls_expire_at)).filter(Number.isFinite);
  if (!expiries.length) return undefined;
  const delay = Math.max(Math.min(...expiries) - Date.now() - 60_000, 10_000);
  return setTimeout(reload, delay);
}

export function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

// `run` as a function that never runs twice at once: a call while it runs makes it run once
// more when it ends (however many such calls came), and every caller awaits that run.
export function coalesce(run) {
  let running = null;
  let again = null;
  return function call() {
    if (!running) {
      running = run().finally(() => (running = null));
      return running;
    }
    again ??= running.catch(() => {}).then(() => {
      again = null;
      return call();
    });
    return again;
  };
}
