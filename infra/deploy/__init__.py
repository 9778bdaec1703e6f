"""Deploy-only: CloudFormation resources rendered from the models (resources.py, written
to resources.generated.yml) and the offline deploy checks (deploy_check.py)."""
