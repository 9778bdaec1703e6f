"""Shared fixtures. Integration and e2e tests run against a real moto server over HTTP:
the one `make test` started (AWS_ENDPOINT_URL), or one started here on a free port."""

from __future__ import annotations

import os
import uuid

import pytest

from infra.local import Emulator, apply_env, bootstrap, free_port, is_emulator


@pytest.fixture(scope="session")
def aws():
    url = os.environ.get("AWS_ENDPOINT_URL")
    emulator = None
    if not url or not is_emulator(url):
        emulator = Emulator(free_port()).start()
        apply_env(emulator.port)
    bootstrap()
    yield os.environ["AWS_ENDPOINT_URL"]
    if emulator:
        emulator.stop()


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class World:
    """A property with one building, floor and room per account, for one test."""

    def __init__(self) -> None:
        from core.services import directory

        self.d = directory
        self.property_id = uid("p")
        self.building_id = "B1"
        directory.create_property(self.property_id, "测试物业")
        directory.add_building(self.property_id, self.building_id, "1 号楼")
        directory.add_floor(self.property_id, self.building_id, "F1", "1 层", 1)
        self.tenant_id = uid("t")
        directory.register_tenant(self.property_id, self.tenant_id, "测试租户", "13800000000")
        self.rooms = 0

    def account(self, opening: int = 0, overdraft: int = 0, account_id: str | None = None) -> str:
        self.rooms += 1
        room = f"R{self.rooms:03d}"
        self.d.add_room(self.property_id, self.building_id, "F1", room, room, "30")
        account_id = account_id or uid("a")
        self.d.open_account(
            self.property_id, account_id, self.building_id, room, self.tenant_id, room,
            opening_balance=opening, overdraft_limit=overdraft,
        )
        return account_id


@pytest.fixture
def world(aws) -> World:
    return World()
