"""The local AWS stack: start and stop the emulator, create every table and queue.

    python -m infra.local start [--port N]   start moto on 127.0.0.1 (state under .local/)
    python -m infra.local bootstrap          create tables and queues (idempotent)
    python -m infra.local stop               stop the emulator this checkout started
    python -m infra.local env                print the variables that point clients at it
    python -m infra.local faults [SPEC|off]  show, set or clear injected DynamoDB faults
                                             (spec: infra/local/moto_app.py; at start: FEIKONG_MOTO_FAULTS)

Product code is never special-cased: every client (boto3, pynamodb) finds the emulator
through AWS_ENDPOINT_URL, AWS_REGION and the credential variables.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / ".local"
DEFAULT_PORT = int(os.environ.get("FEIKONG_MOTO_PORT", "4566"))
REGION = "cn-north-1"
MOTO_ACCOUNT = "123456789012"  # moto's default account id


class StackError(Exception):
    """A problem with the local stack, with a message a developer can act on."""


LOCAL_LIMITS = ("FEIKONG_LOGIN_LIMIT_PER_IP", "FEIKONG_LOGIN_LIMIT_PER_OPENID", "FEIKONG_ORDER_LIMIT_PER_IP",
                "FEIKONG_ORDER_LIMIT_PER_OPENID")


def local_env(port: int) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "FEIKONG_STAGE": os.environ.get("FEIKONG_STAGE", "dev"),
        # powertools as deployed (serverless.yml), without X-Ray: no daemon runs here (core/services/observability.py)
        "POWERTOOLS_SERVICE_NAME": "feikong",
        "POWERTOOLS_METRICS_NAMESPACE": "Feikong",
        "POWERTOOLS_TRACE_DISABLED": "true",
        # what serverless.yml gives the ledger audit (!Ref LedgerAuditQueue), in moto's URL form
        "FEIKONG_AUDIT_QUEUE_URL": f"http://127.0.0.1:{port}/{MOTO_ACCOUNT}/"
                                   f"feikong-{os.environ.get('FEIKONG_STAGE', 'dev')}-ledger-audit",
        # and the notification router and sender (!Ref NotificationsQueue; docs/notifications.md)
        "FEIKONG_NOTIFY_QUEUE_URL": f"http://127.0.0.1:{port}/{MOTO_ACCOUNT}/"
                                    f"feikong-{os.environ.get('FEIKONG_STAGE', 'dev')}-notifications",
        # and month-end's fan-out (!Ref MonthEndQueue; docs/billing.md "Month-end at scale")
        "FEIKONG_MONTH_END_QUEUE_URL": f"http://127.0.0.1:{port}/{MOTO_ACCOUNT}/"
                                       f"feikong-{os.environ.get('FEIKONG_STAGE', 'dev')}-month-end",
        # and the batch operations' fan-out (!Ref BatchQueue; docs/batch.md)
        "FEIKONG_BATCH_QUEUE_URL": f"http://127.0.0.1:{port}/{MOTO_ACCOUNT}/"
                                   f"feikong-{os.environ.get('FEIKONG_STAGE', 'dev')}-batch",
        # every local client is 127.0.0.1 and test suites and benches log in and order
        # hundreds of times a minute: the tenant rate limits are raised here (unless set);
        # tests/integration/test_tenant_limits.py sets its own (docs/tenant-auth.md, "Limits")
        **{name: os.environ.get(name, "1000000") for name in LOCAL_LIMITS},
        # the email channel's sender, verified in the emulator's SES by `bootstrap` (docs/notifications.md)
        "FEIKONG_EMAIL_FROM": os.environ.get("FEIKONG_EMAIL_FROM", LOCAL_EMAIL_FROM),
        # SES is in no AWS China region (nor in the emulator's cn-north-1): email goes through another
        "FEIKONG_EMAIL_REGION": os.environ.get("FEIKONG_EMAIL_REGION", LOCAL_EMAIL_REGION),
    }


def apply_env(port: int) -> dict[str, str]:
    env = local_env(port)
    os.environ.update(env)
    forget()
    return env


# The local stack's JWT secret (public: core/settings.py DEMO_SECRETS lists it, so that a prod
# stage refuses it). Seeded by `bootstrap` in the emulator's Secrets Manager.
LOCAL_JWT_SECRET = "local-only-jwt-secret-" + "x" * 20
# The local stack's console session key (docs/console.md), likewise public and refused on prod.
LOCAL_CONSOLE_SECRET = "local-only-console-secret-" + "y" * 20
# The local official account (the WeChat API emulator's oa_appid / oa_secret; DEMO_SECRETS lists the secret)
LOCAL_OA_APPID, LOCAL_OA_SECRET = "wx0a000000000local", "oa-secret-for-local-runs"
# The SMS emulator's key pair (Tencent SecretId/SecretKey, Alibaba Cloud AccessKey; infra/fakes/sms_emulator.py),
# seeded as the `sms` and `voice` secrets (DEMO_SECRETS lists the secret), and the email channel's local sender
LOCAL_SMS_KEY_ID, LOCAL_SMS_SECRET = "AKIDfeikongLocalSmsKey0000000000", "sms-secret-key-for-local-runs-0123"
LOCAL_EMAIL_FROM, LOCAL_EMAIL_REGION = "notice@feikong.localhost", "ap-southeast-1"


def forget() -> None:
    """Forget settings, fetched secrets, checked starts and the WeChat clients of this
    process (after the environment or a secret changed)."""
    from core.integrations import channels, secrets, wechat, wechatpay
    from core.services import startup
    from core.settings import reset_settings

    reset_settings()
    secrets.clear_cache()
    startup.reset()
    wechatpay.reset()
    wechat.reset()
    channels.reset()


def seed_secrets(values: dict[str, str | dict]) -> None:
    """Write the deployment's secrets by name (jwt, wechat, wechatpay) into the emulator's
    Secrets Manager, where the product reads them exactly as in AWS."""
    from core.integrations import secrets
    from core.settings import get_settings

    s = get_settings()
    for name, value in values.items():
        secrets.put(s.secret_id(name), value, description=f"feikong local {name}")
    secrets.clear_cache()


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_emulator(url: str, timeout: float = 2.0) -> bool:
    # moto's dashboard page: cheap whatever the emulator holds (data.json dumps it all).
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=timeout) as r:
            return r.status == 200 and b"moto" in r.read(20000).lower()
    except (urllib.error.URLError, OSError, ValueError):
        return False


class Emulator:
    """A moto server process on 127.0.0.1:port."""

    def __init__(self, port: int, log_path: Path | None = None, faults: str | None = None) -> None:
        self.port = port
        self.faults = faults  # a fault spec to start with (else FEIKONG_MOTO_FAULTS, if set)
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path or STATE / f"moto-{port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> Emulator:
        if port_in_use(self.port):
            what = "another AWS emulator" if is_emulator(self.url) else "another program"
            raise StackError(
                f"port {self.port} on 127.0.0.1 is already in use by {what}. "
                f"Stop it, or choose another port: FEIKONG_MOTO_PORT=<port> make ..."
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "infra.local.moto_app", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "FEIKONG_MOTO_FAULTS": self.faults} if self.faults is not None else None,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StackError(
                    f"the AWS emulator exited at start (code {self.proc.returncode}); see {self.log_path}"
                )
            if is_emulator(self.url, timeout=0.5):
                return self
            time.sleep(0.1)
        self.stop()
        raise StackError(f"the AWS emulator did not answer on {self.url} within {timeout:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def require_emulator(url: str | None = None) -> str:
    url = url or os.environ.get("AWS_ENDPOINT_URL", "")
    if not url:
        raise StackError("AWS_ENDPOINT_URL is not set: start the local stack (python -m infra.local start)")
    if not is_emulator(url):
        raise StackError(
            f"no AWS emulator answers at {url}: it is not running or has died. "
            "Start it with: python -m infra.local start"
        )
    return url


def bootstrap() -> dict:
    """Create every table and static queue in the emulator, and the local JWT, console and
    official-account secrets (idempotent)."""
    import boto3

    from core.integrations import secrets
    from core.integrations.queues import QUEUES, queue_name
    from core.settings import get_settings, resource_name
    from core.store.schema import table_specs, time_to_live

    require_emulator()
    ddb = boto3.client("dynamodb")
    existing = set(ddb.list_tables()["TableNames"])
    tables = []
    ttl = time_to_live()
    for spec in table_specs():
        ttl_attr = ttl.get(spec["TableName"])
        spec = dict(spec, TableName=resource_name(spec["TableName"]))
        if spec["TableName"] not in existing:
            ddb.create_table(**spec)
            if ttl_attr:
                ddb.update_time_to_live(TableName=spec["TableName"],
                                        TimeToLiveSpecification={"AttributeName": ttl_attr, "Enabled": True})
        tables.append(spec["TableName"])
    sqs = boto3.client("sqs")
    queues = {}
    for name, q in QUEUES.items():  # dead-letter queues come first in QUEUES
        attrs = dict(q.get("attributes", {}))
        if q.get("fifo"):
            attrs["FifoQueue"] = "true"
        dl = q.get("dead_letter")
        if dl:
            dlq_url = queues[dl["queue"]]
            arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            attrs["RedrivePolicy"] = (
                f'{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"{dl["max_receive_count"]}"}}'
            )
        queues[name] = sqs.create_queue(QueueName=queue_name(name), Attributes=attrs)["QueueUrl"]
    secrets.create_if_absent(get_settings().secret_id("jwt"), LOCAL_JWT_SECRET, "feikong local jwt")
    secrets.create_if_absent(get_settings().secret_id("console"), LOCAL_CONSOLE_SECRET, "feikong local console")
    secrets.create_if_absent(get_settings().secret_id("wechat_oa"), {"appid": LOCAL_OA_APPID, "secret": LOCAL_OA_SECRET},
                             "feikong local official account")
    for name in ("sms", "voice"):  # the SMS emulator's key pair (infra/local/channelstack.py starts it)
        secrets.create_if_absent(get_settings().secret_id(name), {"key_id": LOCAL_SMS_KEY_ID, "secret": LOCAL_SMS_SECRET},
                                 f"feikong local {name}")
    sender = get_settings().email_from
    if sender:  # SES sends only from a verified identity (the emulator checks it too)
        boto3.client("ses", region_name=get_settings().email_region or None).verify_email_identity(EmailAddress=sender)
    return {"tables": tables, "queues": queues}


@contextmanager
def emulator_for_script():
    """The emulator AWS_ENDPOINT_URL names, or a fresh one on a free port for the duration;
    tables and queues made either way (bench/ scripts)."""
    emulator = None
    if not is_emulator(os.environ.get("AWS_ENDPOINT_URL", "")):
        emulator = Emulator(free_port()).start()
        apply_env(emulator.port)
    try:
        bootstrap()
        yield
    finally:
        if emulator:
            emulator.stop()


def faults(spec: str | dict | None = None, url: str | None = None) -> dict:
    """Set (spec), clear ("off") or just read (None) the emulator's injected DynamoDB faults;
    returns the settings and what was injected so far, by operation and kind."""
    import json

    url = url or os.environ["AWS_ENDPOINT_URL"]
    if spec is None:
        req = urllib.request.Request(f"{url}/__feikong__/faults")
    elif spec == "off":
        req = urllib.request.Request(f"{url}/__feikong__/faults", method="DELETE")
    else:
        data = json.dumps(spec).encode() if isinstance(spec, dict) else spec.encode()
        req = urllib.request.Request(f"{url}/__feikong__/faults", data=data, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise StackError(json.loads(e.read()).get("error", str(e))) from None


def _pidfile(port: int) -> Path:
    return STATE / f"moto-{port}.pid"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "bootstrap", "env", "faults"])
    parser.add_argument("spec", nargs="?", help="faults: a fault spec, or off")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    try:
        if args.command == "env":
            for k, v in local_env(args.port).items():
                print(f"export {k}={v}")
        elif args.command == "start":
            emu = Emulator(args.port).start()
            _pidfile(args.port).write_text(str(emu.proc.pid))
            print(f"AWS emulator running at {emu.url} (pid {emu.proc.pid}, log {emu.log_path})")
        elif args.command == "stop":
            pf = _pidfile(args.port)
            if not pf.exists():
                print(f"no emulator started by this checkout on port {args.port}")
                return 0
            pid = int(pf.read_text())
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            pf.unlink()
            print(f"AWS emulator on port {args.port} stopped")
        elif args.command == "faults":
            import json

            url = os.environ.get("AWS_ENDPOINT_URL") or local_env(args.port)["AWS_ENDPOINT_URL"]
            print(json.dumps(faults(args.spec, require_emulator(url)), indent=2))
        elif args.command == "bootstrap":
            apply_env(args.port) if "AWS_ENDPOINT_URL" not in os.environ else None
            made = bootstrap()
            print(f"tables: {', '.join(made['tables'])}")
            print(f"queues: {', '.join(made['queues'])}")
    except StackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())


def dynamodb_request_counts(url: str | None = None) -> dict[str, int]:
    """DynamoDB requests the emulator has served, by operation (our emulator only)."""
    import json

    url = url or os.environ["AWS_ENDPOINT_URL"]
    with urllib.request.urlopen(f"{url}/__feikong__/stats", timeout=5) as r:
        return json.loads(r.read())["dynamodb"]
