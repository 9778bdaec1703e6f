"""The process's one botocore session, and the AWS clients made from it.

A botocore session loads the endpoint rules, each service's model and the credentials
once; every session made after it loads them again (in a fresh Lambda, ~0.3 s each).
pynamodb's connections (core/store/connections.py), SQS (core/integrations/queues.py)
and Secrets Manager (core/integrations/secrets.py) therefore all start from this one
session, and each client is made on first use: a call pays only for the clients it needs.
botocore clients are thread-safe; making them is not, hence the lock.

botocore alone, not boto3: boto3 adds resources and S3 transfers (~30 ms to import)
and nothing we use. Region, endpoint and credentials come from the standard AWS
variables, as with any client.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import botocore.session

LOCK = threading.RLock()  # held while a client is made from the shared session
_session: botocore.session.Session | None = None
_clients: dict[str, Any] = {}


def session() -> botocore.session.Session:
    global _session
    with LOCK:
        if _session is None:
            import botocore.session

            _session = botocore.session.get_session()
        return _session


def client(service: str) -> Any:
    """This process's client for `service` ("sqs", "secretsmanager"), made on first use."""
    made = _clients.get(service)
    if made is None:
        with LOCK:
            made = _clients.get(service)
            if made is None:
                made = _clients[service] = session().create_client(service)
    return made


def reset() -> None:
    """Forget the session and its clients (tests and the local stack, after pointing the
    AWS variables elsewhere)."""
    global _session
    with LOCK:
        _session = None
        _clients.clear()
