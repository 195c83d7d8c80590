# Cloud SQL for PostgreSQL 15. Functions connect through the Cloud SQL Python connector as IAM
# database users (no passwords): DB_IAM_AUTH=true, DB_USER = the service account's IAM name.
resource "google_sql_database_instance" "main" {
  #checkov:skip=CKV_GCP_60:public IP is the variable's default; no authorized networks, so only the IAM-checked connector reaches it (db_private_network switches it off)
  #checkov:skip=CKV_GCP_109:log_min_error_statement left at PostgreSQL's default (error) on purpose
  #checkov:skip=CKV_GCP_79:PostgreSQL 15 is this project's chosen major version (the local stack and tests run 15)
  #checkov:skip=CKV2_GCP_13:log_duration logs a line for every statement; slow statements are found with Query Insights instead
  #checkov:skip=CKV_GCP_110:pgaudit needs an extension and a policy decision on statement logging; open item in infra/RUNBOOK.md
  name                = var.db_instance_name
  database_version    = "POSTGRES_15"
  region              = var.region
  deletion_protection = var.db_deletion_protection

  settings {
    tier                        = var.db_tier
    availability_type           = "ZONAL"
    deletion_protection_enabled = var.db_deletion_protection

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      start_time                     = "03:00"
      backup_retention_settings {
        retained_backups = 14
      }
    }

    ip_configuration {
      ipv4_enabled    = var.db_private_network == null
      private_network = var.db_private_network
      ssl_mode        = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED" # the connector and the Auth Proxy use client certificates
    }

    database_flags {
      name  = "cloudsql.iam_authentication"
      value = "on"
    }
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_sql_database" "main" {
  name     = var.db_name
  instance = google_sql_database_instance.main.name
}

# One IAM database user per function service account. Cloud SQL names it after the email
# without ".gserviceaccount.com"; it owns nothing until the migration grants it (RUNBOOK.md).
resource "google_sql_user" "functions" {
  for_each = var.functions
  instance = google_sql_database_instance.main.name
  name     = trimsuffix(google_service_account.functions[each.key].email, ".gserviceaccount.com")
  type     = "CLOUD_IAM_SERVICE_ACCOUNT"
}

resource "google_sql_user" "admins" {
  for_each = toset(var.db_admin_iam_users)
  instance = google_sql_database_instance.main.name
  name     = each.key
  type     = "CLOUD_IAM_USER"
}
