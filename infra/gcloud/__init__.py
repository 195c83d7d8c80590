"""The commands of the gcloud deploy path, one module per concern; infra/deploy_gcloud.py runs them."""
