# Dead-letter policy of the Pub/Sub-triggered functions.
#
# google_cloudfunctions2_function has no dead-letter argument: its Pub/Sub trigger is an
# Eventarc trigger whose push subscription Eventarc creates and names itself, so terraform has
# no subscription resource to set dead_letter_policy on. After each (re)creation of a trigger,
# this step finds that subscription and sets its dead-letter topic and maximum delivery attempts
# with gcloud, and lets the Pub/Sub service agent acknowledge on it (it must, to forward a
# message). The same command is run by `python -m infra.deploy_gcloud` and documented in
# infra/RUNBOOK.md. It needs gcloud, authenticated, where terraform runs.
resource "terraform_data" "dead_letter_policy" {
  for_each = { for k, f in var.functions : k => f if f.dead_letter_topic != null }

  triggers_replace = [
    google_cloudfunctions2_function.functions[each.key].event_trigger[0].trigger,
    google_pubsub_topic.dead_letter[each.value.dead_letter_topic].id,
    each.value.max_delivery_attempts,
  ]

  provisioner "local-exec" {
    working_dir = "${path.module}/../.."
    command     = "python3 -m infra.deploy_gcloud dead-letters --project ${var.project_id} --region ${var.region} --only ${each.key}"
  }

  depends_on = [google_pubsub_topic_iam_member.dead_letter_publisher]
}
