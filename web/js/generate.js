// The generation form: every parameter of POST /v1/generations (prompt, shot type, camera angle,
// style, location, lighting, weather, aspect ratio, number of shots, custom settings, webhook
// and its events) and the references picked in the library, for the selected session. Empty
// optional fields are left out, so the API's defaults apply (no events picked: all of them);
// whatever the API refuses comes back as its error, shown.

import { act } from "./dom.js";

const OPTIONAL = [
  "shot_type", "camera_angle", "style", "location", "lighting", "weather", "webhook",
];

export class GenerateForm {
  constructor(api, references, onCreated) {
    Object.assign(this, { api, references, onCreated, session: null });
    this.form = document.getElementById("generate");
    this.note = document.getElementById("picked");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      act(this.form.querySelector("button"), () => this.submit());
    });
  }

  picked(count) {
    this.note.textContent = count
      ? `References: ${count} picked (at most 8)`
      : "References: none picked (tick them above)";
  }

  body() {
    const fields = this.form.elements;
    const body = {
      prompt: fields.prompt.value,
      aspect_ratio: fields.aspect_ratio.value,
      number_of_shots: Number(fields.number_of_shots.value),
      is_custom_enabled: fields.is_custom_enabled.checked,
      reference_image_ids: this.references.picked(),
    };
    for (const name of OPTIONAL) if (fields[name].value !== "") body[name] = fields[name].value;
    const events = [...fields.webhook_events.selectedOptions].map((option) => option.value);
    if (events.length) body.webhook_events = events;
    if (this.session) body.session_id = this.session.id;
    return body;
  }

  async submit() {
    // One key per submission: a request sent again (a network retry) answers the same job.
    const headers = { "Idempotency-Key": crypto.randomUUID() };
    const answer = await this.api.call("POST", "/v1/generations", { json: this.body(), headers });
    await this.onCreated(answer.body);
  }
}
