// The console's wiring: where the API is (config.json of this origin), sign-in, and the parts of
// the page (sessions, references, the generation form, jobs, gallery) talking to each other.

import { Api } from "./api.js";
import * as auth from "./auth.js";
import { act, clearErrors, coalesce, report } from "./dom.js";
import { Gallery } from "./gallery.js";
import { GenerateForm } from "./generate.js";
import { Jobs } from "./jobs.js";
import { References } from "./references.js";
import { Sessions } from "./sessions.js";

const byId = (id) => document.getElementById(id);

async function boot() {
  const answer = await fetch("config.json", { cache: "no-store" });
  const config = await answer.json();
  const api = new Api(config.api_url, null, () => {
    auth.signOut();
    showSignIn();
  });

  const workspace = byId("session");
  const empty = byId("no-session");
  let sessions = null;
  // A job changed (a status, a shot landed): the gallery and the session list (count, thumbnail,
  // order) are read again, once per burst of changes.
  const refresh = coalesce(async () => {
    await Promise.all([gallery.load(), sessions.load()]);
  });
  const jobs = new Jobs(api, () => refresh().catch(report));
  const gallery = new Gallery(api, () => sessions.load().catch(report));
  const references = new References(api, (count) => form.picked(count));
  const form = new GenerateForm(api, references, async (job) => {
    jobs.add(job);
    await sessions.load();
  });
  sessions = new Sessions(api, (session) => {
    workspace.hidden = !session;
    empty.hidden = Boolean(session);
    references.session = session;
    form.session = session;
    Promise.all([jobs.show(session), gallery.show(session)]).catch(report);
  });

  async function start({ user, token }) {
    api.token = token;
    const me = await api.get("/v1/me"); // the token, checked by the API (and the API, reached)
    byId("sign-in").hidden = true;
    byId("account-name").textContent = user;
    byId("account-id").textContent = me.id;
    byId("account").hidden = false;
    byId("app").hidden = false;
    await Promise.all([sessions.load(), references.load()]);
    sessions.select(sessions.items[0] ?? null);
  }

  const signIn = byId("sign-in");
  signIn.addEventListener("submit", (event) => {
    event.preventDefault();
    act(signIn.querySelector("button"), async () => {
      clearErrors();
      await start(await auth.signIn(signIn.elements.user.value.trim()));
    });
  });
  byId("sign-out").addEventListener("click", () => {
    auth.signOut();
    location.reload();
  });

  const saved = auth.current();
  if (saved) await start(saved).catch((error) => {
    report(error);
    showSignIn();
  });
  else showSignIn();
  document.body.dataset.ready = "true";
}

function showSignIn() {
  byId("app").hidden = true;
  byId("account").hidden = true;
  byId("sign-in").hidden = false;
  byId("sign-in").elements.user.focus();
}

boot().catch((error) => {
  report(error);
  document.body.dataset.ready = "true";
});
