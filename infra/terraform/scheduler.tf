# Cloud Scheduler publishes the manifest's JSON bodies (never empty: a Pub/Sub push without data
# is refused by functions-framework) to the maintenance topic.
resource "google_cloud_scheduler_job" "schedules" {
  for_each  = var.schedules
  name      = each.key
  region    = var.region
  schedule  = each.value.cron
  time_zone = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.topics[each.value.topic].id
    data       = base64encode(each.value.body)
  }

  depends_on = [google_project_service.apis]
}
