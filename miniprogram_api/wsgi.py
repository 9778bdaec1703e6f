"""The WSGI app zappa serves (zappa_settings.json: app_function): the tenant app, built
here, and the console app, built on the first console request, behind a path dispatcher
(miniprogram_api/app.py: create_wsgi_app), so a tenant's cold start does not import the
console. Before its first request it checks the deployment (core/services/startup.py:
settings and secrets there, no demo switch on prod) and answers 503 until that passes; the
check is not made at import, so the app object loads in a fraction of a cold start.

Two settings of the process are made here, by the module a cold start imports first
(docs/cold-start.md): pydantic looks for no plugins (the first model it builds would
otherwise read the metadata of every installed distribution; we have none), and the
garbage collector is off while the app is imported and built: what that makes (modules,
classes, routes) lives as long as the process, so it is then frozen out of every later
collection instead of being traced over and over while it grows.
"""

import gc
import os

os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
_collecting = gc.isenabled()
gc.disable()

from miniprogram_api.app import NEEDS, create_wsgi_app  # noqa: E402 - after the two settings above

__all__ = ["NEEDS", "app"]  # NEEDS: what the offline deploy check holds zappa_settings.json to

try:
    app = create_wsgi_app(check_start=True)
finally:
    gc.freeze()
    if _collecting:
        gc.enable()
