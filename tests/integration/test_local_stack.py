"""The local stack: clear messages for a busy port or a dead emulator, idempotent bootstrap."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from core.store.schema import table_specs
from infra.local.stack import Emulator, StackError, bootstrap, free_port, require_emulator

ROOT = Path(__file__).resolve().parents[2]


def test_busy_port_gives_a_clear_message():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(StackError) as e:
            Emulator(port).start()
    assert f"port {port}" in str(e.value) and "already in use" in str(e.value)


def test_busy_port_by_an_emulator_is_named_as_such(aws):
    port = int(aws.rsplit(":", 1)[1])
    with pytest.raises(StackError) as e:
        Emulator(port).start()
    assert "another AWS emulator" in str(e.value)


def test_dead_emulator_is_reported_not_a_traceback():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StackError) as e:
        require_emulator(url)
    assert "no AWS emulator answers" in str(e.value)
    env = {**os.environ, "AWS_ENDPOINT_URL": url}
    proc = subprocess.run([sys.executable, "-m", "infra.local", "bootstrap"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "error: no AWS emulator answers" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_start_bootstrap_stop_through_the_cli():
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "infra.local", *args, "--port", str(port)], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=60)

    started = cli("start")
    try:
        assert started.returncode == 0, started.stderr
        assert f"http://127.0.0.1:{port}" in started.stdout
        made = cli("bootstrap")
        assert made.returncode == 0, made.stderr
        again = cli("bootstrap")  # idempotent
        assert again.returncode == 0, again.stderr
        ddb = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}")
        names = set(ddb.list_tables()["TableNames"])
        assert {f"feikong-dev-{s['TableName']}" for s in table_specs()} <= names
    finally:
        stopped = cli("stop")
    assert stopped.returncode == 0
    with pytest.raises(StackError):
        require_emulator(f"http://127.0.0.1:{port}")


def test_bootstrap_matches_the_specs(aws):
    bootstrap()
    ddb = boto3.client("dynamodb")
    for spec in table_specs():
        live = ddb.describe_table(TableName=f"feikong-dev-{spec['TableName']}")["Table"]
        assert live["KeySchema"] == spec["KeySchema"]
        live_gsis = {g["IndexName"]: g["KeySchema"] for g in live.get("GlobalSecondaryIndexes", [])}
        assert live_gsis == {g["IndexName"]: g["KeySchema"] for g in spec.get("GlobalSecondaryIndexes", [])}


def test_all_clients_use_the_standard_endpoint_variable(aws):
    """Product code never names an endpoint: AWS_ENDPOINT_URL alone points it here."""
    for path in (ROOT / "core").rglob("*.py"):
        text = path.read_text()
        assert "endpoint_url" not in text and "127.0.0.1" not in text, path
