"""The WSGI app object (zappa_settings.json: app_function). Before its first request it
checks the deployment (core/services/startup.py: settings and secrets there, no demo
switch on prod) and answers 503 until that passes; the check is not made at import so
the app object loads in a fraction of a cold start (docs/cold-start.md)."""

from miniprogram_api.app import NEEDS, create_app

__all__ = ["NEEDS", "app"]  # NEEDS: what the offline deploy check holds zappa_settings.json to

app = create_app(check_start=True)
