# One Cloud Function (2nd gen) per entry of infra/functions.toml, all built from the same
# archive (make package -> dist/source.zip, whose root main.py re-exports every entry point).
locals {
  event_types = {
    gcs_finalize = "google.cloud.storage.object.v1.finalized"
    pubsub       = "google.cloud.pubsub.topic.v1.messagePublished"
  }
  db_ip_type = var.db_private_network == null ? "public" : "private"
}

resource "google_cloudfunctions2_function" "functions" {
  for_each = var.functions
  name     = each.key
  location = var.region

  build_config {
    runtime     = "python311"
    entry_point = each.value.entry_point
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.functions[each.key].email
    timeout_seconds                  = each.value.timeout_seconds
    available_memory                 = each.value.memory
    max_instance_count               = each.value.max_instances
    max_instance_request_concurrency = each.value.concurrency
    available_cpu                    = each.value.cpu
    ingress_settings                 = each.value.trigger == "http" ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    # `vpc = false` (deliver-webhooks): never the connector, so its requests reach the
    # internet only, never the VPC.
    vpc_connector                 = each.value.vpc ? var.vpc_connector : null
    vpc_connector_egress_settings = each.value.vpc && var.vpc_connector != null ? "PRIVATE_RANGES_ONLY" : null

    # The variable names of shared/config.py; infra/deploy_gcloud.py sets the same ones
    # (tests/infra/test_consistency.py compares them).
    environment_variables = {
      GCP_PROJECT               = var.project_id
      BUCKET_NAME               = google_storage_bucket.media.name
      INSTANCE_CONNECTION_NAME  = google_sql_database_instance.main.connection_name
      DB_NAME                   = google_sql_database.main.name
      DB_USER                   = google_sql_user.functions[each.key].name
      DB_IAM_AUTH               = "true"
      DB_IP_TYPE                = local.db_ip_type
      DB_POOL_SIZE              = tostring(each.value.pool_size)
      DB_POOL_TIMEOUT_SECONDS   = tostring(each.value.pool_timeout_seconds)
      THREADS                   = tostring(each.value.concurrency)
      TOPIC_GENERATION_REQUESTS = google_pubsub_topic.topics[var.topics.generation_requests].name
      TOPIC_RENDER_REQUESTS     = google_pubsub_topic.topics[var.topics.render_requests].name
      TOPIC_GENERATION_EVENTS   = google_pubsub_topic.topics[var.topics.generation_events].name
      TOPIC_OBJECT_DELETIONS    = google_pubsub_topic.topics[var.topics.object_deletions].name
      TOPIC_MAINTENANCE         = google_pubsub_topic.topics[var.topics.maintenance].name
      OPENAI_CONCURRENT_IMAGES  = tostring(var.model_limits.concurrent_images)
      OPENAI_IMAGES_PER_MINUTE  = tostring(var.model_limits.images_per_minute)
      CORS_ORIGINS              = join(",", var.cors_origins)
      AUTH_ISSUER               = var.auth_issuer
      AUTH_AUDIENCE             = var.auth_audience
    }

    dynamic "secret_environment_variables" {
      for_each = toset(each.value.secrets)
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.openai_api_key.secret_id
        version    = var.openai_secret_version
      }
    }
  }

  # Event functions only. Event triggers made through the Cloud Functions v2 API do not retry
  # unless told: retry_policy follows the manifest's `retry` on every trigger.
  dynamic "event_trigger" {
    for_each = each.value.trigger == "http" ? [] : [each.value.trigger]
    content {
      trigger_region        = var.region
      event_type            = local.event_types[event_trigger.value]
      pubsub_topic          = event_trigger.value == "pubsub" ? google_pubsub_topic.topics[each.value.topic].id : null
      retry_policy          = each.value.retry ? "RETRY_POLICY_RETRY" : "RETRY_POLICY_DO_NOT_RETRY"
      service_account_email = google_service_account.trigger.email

      dynamic "event_filters" {
        for_each = event_trigger.value == "gcs_finalize" ? [google_storage_bucket.media.name] : []
        content {
          attribute = "bucket"
          value     = event_filters.value
        }
      }
    }
  }

  depends_on = [
    google_project_iam_member.gcs_pubsub_publisher,
    google_project_iam_member.trigger_event_receiver,
    google_secret_manager_secret_iam_member.openai_readers,
  ]
}

# The api is public at the network level; every /v1 route checks the caller's ID token itself.
resource "google_cloud_run_v2_service_iam_member" "api_public" {
  for_each = { for k, f in var.functions : k => f if f.trigger == "http" }
  name     = google_cloudfunctions2_function.functions[each.key].name
  location = var.region
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# Event functions accept calls only from the trigger account.
resource "google_cloud_run_v2_service_iam_member" "trigger_invoker" {
  for_each = { for k, f in var.functions : k => f if f.trigger != "http" }
  name     = google_cloudfunctions2_function.functions[each.key].name
  location = var.region
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}
