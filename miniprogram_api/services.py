"""The services the views call, made on the first request that needs them and kept for
the life of the process.

The app object itself imports only Flask and these names: the store, pynamodb, botocore
clients and SDKs load with the first request that uses them (docs/cold-start.md), as
the Lambda handlers do. A test or bench may place its own instance in
`app.extensions` under the same key before the first request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import current_app

if TYPE_CHECKING:
    from core.services.auth import TenantAuth
    from core.services.payments import Payments

_lock = threading.Lock()


def _service(key: str, make: Callable[[], Any]) -> Any:
    ext = current_app.extensions
    found = ext.get(key)
    if found is None:
        with _lock:
            found = ext.get(key)
            if found is None:
                found = ext[key] = make()
    return found


def payments() -> Payments:
    def make() -> Payments:
        from core.services.payments import Payments

        return Payments()

    return _service("feikong.payments", make)


def tenant_auth() -> TenantAuth:
    def make() -> TenantAuth:
        from core.services.auth import TenantAuth

        return TenantAuth()

    return _service("feikong.auth", make)
