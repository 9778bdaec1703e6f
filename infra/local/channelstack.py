"""The local notification channels: the SMS emulator (Tencent Cloud and Alibaba Cloud SMS,
Alibaba Cloud voice; infra/fakes/sms_emulator.py), the WeChat API emulator's message
templates, and the settings and secrets that point the channel port
(core/integrations/channels.py) at them. Used by `make demo`, the tests and bench scripts:

    channels = ChannelStack(paystack.api).start()   # the WeChat API emulator of the PayStack
    channels.apply_env()                            # settings + `sms`/`voice` secrets + SES sender
    ...
    channels.stop()

Email needs nothing here: SES is the AWS emulator's (the stack's bootstrap verifies the
local sender, FEIKONG_EMAIL_FROM). Template ids are made per catalog key
(core/domain/notifications.py KINDS) and registered with the emulators, which refuse others.
"""

from __future__ import annotations

import os

from infra.fakes.sms_emulator import SmsEmulator, SmsEmulatorConfig
from infra.fakes.wechat_api_emulator import WeChatApiEmulator
from infra.local.stack import LOCAL_EMAIL_FROM, LOCAL_SMS_KEY_ID, LOCAL_SMS_SECRET, forget, seed_secrets

SMS_APP_ID = "1400000001"
SMS_SIGN = "费控物业"
VOICE_SHOW_NUMBER = "4001234567"


def catalog() -> dict[str, str]:
    """{catalog key: Chinese title} of every kind of message, and the SMS of a binding code
    (core/domain/phone_codes.py, sent by core/services/phone_binding.py)."""
    from core.domain.notifications import KINDS
    from core.domain.phone_codes import SMS_TEMPLATE_KEY, SMS_TITLE

    return {**{key: kind.title for key, kind in KINDS.items()}, SMS_TEMPLATE_KEY: SMS_TITLE}


def _mapping(ids: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in ids.items())


class ChannelStack:
    def __init__(self, wechat: WeChatApiEmulator | None = None, keys: dict[str, str] | None = None,
                 h5_base_url: str = "") -> None:
        self.wechat = wechat
        self.h5_base_url = h5_base_url  # the app's URL (the demo's), for the links of template messages
        self.keys = keys if keys is not None else catalog()
        n = range(len(self.keys))
        self.subscribe_ids = {k: f"SUB-{i + 1:02d}-{k}" for i, k in zip(n, self.keys, strict=True)}
        self.template_ids = {k: f"OA-{i + 1:02d}-{k}" for i, k in zip(n, self.keys, strict=True)}
        self.tencent_ids = {k: str(2_100_001 + i) for i, k in zip(n, self.keys, strict=True)}
        self.aliyun_ids = {k: f"SMS_46{i + 1:07d}" for i, k in zip(n, self.keys, strict=True)}
        self.voice_ids = {k: f"TTS_46{i + 1:07d}" for i, k in zip(n, self.keys, strict=True)}
        templates = {v: None for ids in (self.tencent_ids, self.aliyun_ids, self.voice_ids) for v in ids.values()}
        self.sms = SmsEmulator(SmsEmulatorConfig(key_id=LOCAL_SMS_KEY_ID, secret=LOCAL_SMS_SECRET,
                                                 sdk_app_id=SMS_APP_ID, sign_names={SMS_SIGN}, templates=templates))
        self._saved: dict[str, str | None] = {}

    def start(self) -> ChannelStack:
        self.sms.start()
        if self.wechat is not None:
            self.wechat.register_templates(
                subscribe={self.subscribe_ids[k]: title for k, title in self.keys.items()},
                oa={self.template_ids[k]: title for k, title in self.keys.items()})
        return self

    def env(self, provider: str | None = None) -> dict[str, str]:
        """Settings pointing the channel port at the emulators (no secrets: `apply_env` seeds them)."""
        provider = provider or os.environ.get("FEIKONG_SMS_PROVIDER") or "tencent"
        sms_ids = self.aliyun_ids if provider == "aliyun" else self.tencent_ids
        return {
            "FEIKONG_SMS_PROVIDER": provider,
            "FEIKONG_SMS_TENCENT_ENDPOINT": self.sms.url,
            "FEIKONG_SMS_ALIYUN_ENDPOINT": f"{self.sms.url}/aliyun/",
            "FEIKONG_SMS_APP_ID": SMS_APP_ID,
            "FEIKONG_SMS_SIGN_NAME": SMS_SIGN,
            "FEIKONG_SMS_TEMPLATES": _mapping(sms_ids),
            "FEIKONG_WECHAT_SUBSCRIBE_TEMPLATES": _mapping(self.subscribe_ids),
            "FEIKONG_WECHAT_TEMPLATE_IDS": _mapping(self.template_ids),
            "FEIKONG_VOICE_PROVIDER": "aliyun",
            "FEIKONG_VOICE_ALIYUN_ENDPOINT": f"{self.sms.url}/aliyun/",
            "FEIKONG_VOICE_TEMPLATES": _mapping(self.voice_ids),
            "FEIKONG_VOICE_SHOW_NUMBER": VOICE_SHOW_NUMBER,
            "FEIKONG_EMAIL_FROM": os.environ.get("FEIKONG_EMAIL_FROM") or LOCAL_EMAIL_FROM,
            **({"FEIKONG_H5_BASE_URL": self.h5_base_url} if self.h5_base_url else {}),
        }

    def secrets(self) -> dict[str, dict]:
        key = {"key_id": LOCAL_SMS_KEY_ID, "secret": LOCAL_SMS_SECRET}
        return {"sms": key, "voice": key}

    def apply_env(self, provider: str | None = None) -> None:
        """Point the channel port at the emulators, seed the `sms`/`voice` secrets in the AWS
        emulator's Secrets Manager, verify the SES sender there; forget what was read before."""
        for k, v in self.env(provider).items():
            self._saved.setdefault(k, os.environ.get(k))
            os.environ[k] = v
        forget()
        seed_secrets(self.secrets())
        from core import aws
        from core.settings import get_settings

        with aws.LOCK:
            ses = aws.session().create_client("ses", region_name=get_settings().email_region or None)
        ses.verify_email_identity(EmailAddress=os.environ["FEIKONG_EMAIL_FROM"])

    def pages(self) -> dict[str, str]:
        """The emulators' pages listing what they received (for the demo's banner)."""
        out = {"sms": f"{self.sms.url}/emulator/messages"}
        if self.wechat is not None:
            out["wechat"] = f"{self.wechat.url}/emulator/messages"
        return out

    def stop(self) -> None:
        self.sms.stop()
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._saved.clear()
        forget()
