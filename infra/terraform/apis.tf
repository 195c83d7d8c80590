# The manifest's APIs ([project] apis in infra/functions.toml). Every resource that calls one of
# them depends on this, directly or through what it references, so that a first apply in a new
# project does not race the enabling (tests/infra/test_terraform.py follows the references).
resource "google_project_service" "apis" {
  for_each           = toset(var.apis)
  service            = each.key
  disable_on_destroy = false
}
