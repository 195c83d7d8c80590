# Media bucket: private, uniform access, never public. The frontend reaches objects only
# through short-lived V4 signed URLs made by the api.
#
# Versioning: off, on purpose. Every write is under a deterministic name and a retry overwrites
# it; versioning would keep a noncurrent copy per retried render and keep "deleted" user data
# alive after a user deletes it. Generated images can be re-rendered; uploads are the user's copy.
resource "google_storage_bucket" "media" {
  #checkov:skip=CKV_GCP_78:versioning off on purpose (see the comment above): deletes must delete, retries overwrite
  #checkov:skip=CKV_GCP_62:access is audited by Cloud Audit Logs (data access); no second usage-log bucket
  name                        = var.bucket_name
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # Browsers load signed GETs, and send a direct upload's signed PUT with every header it signs:
  # a preflight asks for each, and the bucket allows only what response_header lists. The rule
  # comes from infra/cors.py through the generated bucket_cors input (the gcloud script and the
  # local stack set the same one; tests/infra/test_bucket_cors.py derives the headers from the
  # signing code).
  cors {
    origin          = var.cors_origins
    method          = var.bucket_cors.method
    response_header = var.bucket_cors.response_header
    max_age_seconds = var.bucket_cors.max_age_seconds
  }

  lifecycle_rule {
    condition {
      age            = var.quarantine_retention_days
      matches_prefix = ["quarantine/"]
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

# Source archives, one object per content hash (source/<sha256>.zip): the hash in the name is
# the release id that a rollback redeploys.
resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_78:objects are immutable and named by content hash; a version history adds nothing
  #checkov:skip=CKV_GCP_62:access is audited by Cloud Audit Logs (data access); no second usage-log bucket
  name                        = "${var.project_id}-fn-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket_object" "source" {
  name   = "source/${filesha256(var.source_archive)}.zip"
  bucket = google_storage_bucket.source.name
  source = var.source_archive
}

# Eventarc's Cloud Storage triggers are fed through Pub/Sub by the Cloud Storage service agent,
# which needs roles/pubsub.publisher in the project.
data "google_storage_project_service_account" "gcs" {
  depends_on = [google_project_service.apis]
}

resource "google_project_iam_member" "gcs_pubsub_publisher" {
  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}
