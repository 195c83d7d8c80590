locals {
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  dead_letter_topics = toset([
    for f in values(var.functions) : f.dead_letter_topic if f.dead_letter_topic != null
  ])
}

resource "google_pubsub_topic" "topics" {
  #checkov:skip=CKV_GCP_83:messages are ids and small JSON commands, no customer data; Google-managed encryption
  for_each = toset(values(var.topics))
  name     = each.key

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:messages are ids and small JSON commands, no customer data; Google-managed encryption
  for_each = local.dead_letter_topics
  name     = each.key

  depends_on = [google_project_service.apis]
}

# Messages published to a topic without a subscription are lost: each dead-letter topic keeps
# its messages in a pull subscription for inspection and replay (infra/RUNBOOK.md, "Replaying a
# dead-letter topic"). It never expires (ttl ""), however long no one pulls from it.
resource "google_pubsub_subscription" "dead_letter_hold" {
  for_each                   = local.dead_letter_topics
  name                       = "${each.key}-hold"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  message_retention_duration = "${var.dead_letter_hold.message_retention_seconds}s"
  ack_deadline_seconds       = var.dead_letter_hold.ack_deadline_seconds
  expiration_policy {
    ttl = ""
  }
}

# Pub/Sub forwards a poison message to the dead-letter topic as its own service agent.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.dead_letter_topics
  topic    = google_pubsub_topic.dead_letter[each.key].id
  role     = "roles/pubsub.publisher"
  member   = local.pubsub_agent
}
