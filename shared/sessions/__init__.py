"""Sessions: create, list, read, rename and delete (table `sessions`, routes /v1/sessions...)."""
