# One service account per function, holding only what infra/functions.toml says it needs.
resource "google_service_account" "functions" {
  for_each     = var.functions
  account_id   = substr("fn-${each.key}", 0, 30)
  display_name = "Cloud Function ${each.key}"

  depends_on = [google_project_service.apis] # the IAM API
}

locals {
  fn_members = { for k, sa in google_service_account.functions : k => "serviceAccount:${sa.email}" }

  publish_grants = merge([
    for name, f in var.functions : {
      for topic in f.publishes : "${name}/${topic}" => { function = name, topic = topic }
    }
  ]...)

  secret_readers = toset([
    for name, f in var.functions : name if contains(f.secrets, "OPENAI_API_KEY")
  ])

  url_signers = toset([for name, f in var.functions : name if f.signs_urls])

  # Project-level roles: the connector needs cloudsql.client (connect) and cloudsql.instanceUser
  # (IAM database login); neither can be granted on a single instance.
  sql_grants = merge([
    for name in keys(var.functions) : {
      "${name}/client"       = { function = name, role = "roles/cloudsql.client" }
      "${name}/instanceUser" = { function = name, role = "roles/cloudsql.instanceUser" }
    }
  ]...)
}

# Objects of the media bucket only (nothing project-wide), with the manifest's role.
resource "google_storage_bucket_iam_member" "functions_objects" {
  for_each = var.functions
  bucket   = google_storage_bucket.media.name
  role     = each.value.bucket_role
  member   = local.fn_members[each.key]
}

resource "google_pubsub_topic_iam_member" "publishers" {
  for_each = local.publish_grants
  topic    = google_pubsub_topic.topics[each.value.topic].id
  role     = "roles/pubsub.publisher"
  member   = local.fn_members[each.value.function]
}

resource "google_secret_manager_secret_iam_member" "openai_readers" {
  for_each  = local.secret_readers
  secret_id = google_secret_manager_secret.openai_api_key.id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.fn_members[each.key]
}

# V4 signed URLs without a key file: the api signs through IAM signBlob as itself.
resource "google_service_account_iam_member" "self_signers" {
  for_each           = local.url_signers
  service_account_id = google_service_account.functions[each.key].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.fn_members[each.key]
}

resource "google_project_iam_member" "sql" {
  for_each = local.sql_grants
  project  = var.project_id
  role     = each.value.role
  member   = local.fn_members[each.value.function]
}

resource "google_project_iam_member" "db_admins" {
  for_each = {
    for pair in setproduct(var.db_admin_iam_users, ["roles/cloudsql.client", "roles/cloudsql.instanceUser"]) :
    "${pair[0]}/${pair[1]}" => { user = pair[0], role = pair[1] }
  }
  project = var.project_id
  role    = each.value.role
  member  = "user:${each.value.user}"
}

# The identity Eventarc uses to deliver events (GCS finalize, Pub/Sub) to the event functions.
resource "google_service_account" "trigger" {
  account_id   = "fn-event-trigger"
  display_name = "Eventarc triggers of the Cloud Functions"

  depends_on = [google_project_service.apis] # the IAM API
}

resource "google_project_iam_member" "trigger_event_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.trigger.email}"
}

# Pub/Sub mints the push OIDC token of the trigger's subscription as the trigger account.
resource "google_service_account_iam_member" "pubsub_token_creator" {
  service_account_id = google_service_account.trigger.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}
