output "api_url" {
  description = "Base URL of the api function (routes under /v1)."
  value       = google_cloudfunctions2_function.functions["api"].service_config[0].uri
}

output "bucket" {
  value = google_storage_bucket.media.name
}

output "instance_connection_name" {
  description = "INSTANCE_CONNECTION_NAME for the functions and for migrations."
  value       = google_sql_database_instance.main.connection_name
}

output "source_object" {
  description = "The deployed archive, gs://<bucket>/source/<sha256>.zip: record it per release for rollbacks."
  value       = "gs://${google_storage_bucket.source.name}/${google_storage_bucket_object.source.name}"
}

output "function_service_accounts" {
  value = { for k, sa in google_service_account.functions : k => sa.email }
}

output "function_db_users" {
  description = "IAM database user of each function (grant them the app role after migrating)."
  value       = { for k, u in google_sql_user.functions : k => u.name }
}
