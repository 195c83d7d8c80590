# Deployment settings. The function list itself comes from functions.auto.tfvars.json,
# generated from infra/functions.toml by `python -m infra.tfvars` (never edit it by hand).

variable "project_id" {
  description = "GCP project id."
  type        = string
}

variable "region" {
  description = "Region of the functions, the bucket, the database and the triggers (the bucket and its finalize trigger must share a location)."
  type        = string
  default     = "us-central1"
}

variable "bucket_name" {
  description = "Media bucket (uploads/, working/, generated/, thumbnails, quarantine/). Globally unique."
  type        = string
  default     = "video-gen-image-bucket"
}

variable "cors_origins" {
  description = "The origins browsers may call from (e.g. [\"https://app.example.com\"]): the api's CORS_ORIGINS and the bucket's CORS (signed PUT uploads, signed GETs)."
  type        = list(string)

  validation {
    condition     = length(var.cors_origins) > 0 && alltrue([for o in var.cors_origins : can(regex("^https?://[^/*?#]+$", o))])
    error_message = "cors_origins: at least one exact origin, scheme://host[:port] (no path, no wildcard)."
  }
}

variable "quarantine_retention_days" {
  description = "Objects under quarantine/ are deleted after this many days."
  type        = number
  default     = 30
}

variable "source_archive" {
  description = "The archive built by `make package`; uploaded as source/<sha256>.zip."
  type        = string
  default     = "../../dist/source.zip"
}

variable "db_instance_name" {
  type    = string
  default = "imagegen-pg"
}

variable "db_name" {
  type    = string
  default = "imagegen"
}

variable "db_tier" {
  description = "Cloud SQL machine type. max_connections in infra/functions.toml assumes db-custom-1-3840's default (100)."
  type        = string
  default     = "db-custom-1-3840"
}

variable "db_private_network" {
  description = "VPC self link for a private-IP-only instance (needs private services access on that VPC). null = public IP, reached only through the Cloud SQL connector (no authorized networks)."
  type        = string
  default     = null
}

variable "vpc_connector" {
  description = "Serverless VPC Access connector for the functions; required when db_private_network is set."
  type        = string
  default     = null

  validation {
    condition     = (var.vpc_connector == null) == (var.db_private_network == null)
    error_message = "Set db_private_network and vpc_connector together (private IP), or neither (public IP)."
  }
}

variable "db_deletion_protection" {
  type    = bool
  default = true
}

variable "db_admin_iam_users" {
  description = "People (emails) who run migrations and operate the database as IAM database users."
  type        = list(string)
  default     = []
}

variable "openai_secret_version" {
  description = "Secret Manager version of the OpenAI key the functions read ('latest' or a number: a number makes a rotation an explicit deploy)."
  type        = string
  default     = "latest"
}

variable "auth_issuer" {
  description = "ID token issuer; empty = the code's default (https://securetoken.google.com/<project>)."
  type        = string
  default     = ""
}

variable "auth_audience" {
  description = "ID token audience; empty = the code's default (the project id)."
  type        = string
  default     = ""
}

# ---- generated from infra/functions.toml (functions.auto.tfvars.json) ----

variable "apis" {
  description = "Google APIs the deployment uses (apis.tf enables them)."
  type        = list(string)
}

variable "dead_letter_hold" {
  description = "The pull subscription that keeps each dead-letter topic's messages."
  type = object({
    message_retention_seconds = number
    ack_deadline_seconds      = number
  })
}

variable "functions" {
  description = "The manifest's functions, keyed by name."
  type = map(object({
    entry_point           = string
    trigger               = string
    topic                 = string
    object_prefix         = string
    dead_letter_topic     = string
    max_delivery_attempts = number
    timeout_seconds       = number
    memory                = string
    max_instances         = number
    pool_size             = number
    pool_timeout_seconds  = number
    retry                 = bool
    publishes             = list(string)
    secrets               = list(string)
    signs_urls            = bool
    concurrency           = number
    cpu                   = string
    bucket_role           = string
    vpc                   = bool
  }))
}

variable "model_limits" {
  description = "The OpenAI organisation's image limits, which every instance shares through PostgreSQL (OPENAI_CONCURRENT_IMAGES, OPENAI_IMAGES_PER_MINUTE)."
  type = object({
    concurrent_images = number
    images_per_minute = number
  })
}

variable "topics" {
  description = "The manifest's topics (key = config name, value = topic name)."
  type        = map(string)
}

variable "bucket_cors" {
  description = "The media bucket's CORS rule but its origins (cors_origins): generated from infra/cors.py."
  type = object({
    method          = list(string)
    response_header = list(string)
    max_age_seconds = number
  })
}

variable "schedules" {
  description = "Cloud Scheduler jobs: JSON bodies published to a topic on a cron."
  type = map(object({
    cron  = string
    body  = string
    topic = string
  }))
}
