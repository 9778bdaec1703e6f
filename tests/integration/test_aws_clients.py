"""One botocore session per process, and only the clients a call needs
(core/aws.py, core/store/connections.py; docs/cold-start.md). Run in a fresh interpreter
against the emulator, counting the live botocore objects from outside the code: a fresh
Lambda is where extra sessions and clients cost (each ~0.3 s there)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import gc, json, sys
import botocore.client, botocore.session

def alive():
    gc.collect()
    sessions = [o for o in gc.get_objects() if isinstance(o, botocore.session.Session)]
    clients = sorted(o.meta.service_model.service_name for o in gc.get_objects()
                     if isinstance(o, botocore.client.BaseClient))
    return [len(sessions), clients]

from core.store import models, tx
from core.integrations import queues
steps = {"imported": alive()}
for model in (models.AccountItem, models.DirectoryItem, models.OrderItem, models.LedgerEntryItem):
    assert list(model.query("absent-" + model.__name__, limit=1)) == []
steps["four tables read"] = alive()
tx.connection().dispatch("DescribeTable", {"TableName": models.AccountItem.Meta.table_name})
steps["a write connection used"] = alive()
queues.sqs().list_queues()
steps["sqs used"] = alive()
print(json.dumps(steps))
"""


def test_models_writes_and_queues_share_one_session_and_make_clients_on_first_use(aws):
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    steps = json.loads(out.stdout.strip().splitlines()[-1])
    assert steps == {
        "imported": [0, []],  # importing the store makes nothing
        "four tables read": [1, ["dynamodb"]],  # one client for every model's reads
        "a write connection used": [1, ["dynamodb", "dynamodb"]],  # writes: botocore retries off
        "sqs used": [1, ["dynamodb", "dynamodb", "sqs"]],
    }


def test_every_model_reads_through_the_same_connection(aws):
    from core.store import connections, models

    tables = {m._get_connection().connection for m in models.ALL_MODELS}
    assert tables == {connections.connection(models.AccountItem.Meta.max_retry_attempts)}
