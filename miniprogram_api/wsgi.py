"""The WSGI app object (zappa_settings.json: app_function), made once the deployment is
checked (core/services/startup.py): its settings and secrets there, no demo switch on prod."""

from core.services.startup import check_start
from miniprogram_api.app import NEEDS, create_app

check_start(NEEDS)
app = create_app()
