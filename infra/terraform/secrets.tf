# The OpenAI key's secret is created empty: its value never enters terraform state. Add it with
#   printf %s "$OPENAI_API_KEY" | gcloud secrets versions add openai-api-key --data-file=-
# before the first apply of the functions (see infra/RUNBOOK.md, "First deploy").
resource "google_secret_manager_secret" "openai_api_key" {
  secret_id = "openai-api-key"

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}
