"""Tables and queues have one definition: the models. The file serverless.yml includes
is rendered from them, and the local bootstrap creates them from the same specs."""

from pathlib import Path

import yaml

from core.integrations.queues import QUEUES
from core.store.models import ALL_MODELS
from core.store.schema import table_specs
from infra.deploy.resources import OUT, logical_id, render

ROOT = Path(__file__).resolve().parents[2]


def test_generated_resources_are_up_to_date():
    assert OUT.read_text() == render(), "run: python -m infra.deploy.resources"


def test_serverless_yml_includes_the_generated_resources():
    text = (ROOT / "serverless.yml").read_text()
    assert "${file(infra/deploy/resources.generated.yml)}" in text
    # serverless.yml itself declares no table or queue of its own beside the generated ones
    assert "AWS::DynamoDB::Table" not in text
    assert "AWS::SQS::Queue" not in text


def test_every_model_and_queue_is_in_the_generated_resources():
    resources = yaml.safe_load(OUT.read_text())["Resources"]
    assert len(table_specs()) == len(ALL_MODELS)
    for spec in table_specs():
        props = resources[logical_id(spec["TableName"], "Table")]["Properties"]
        for key in ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            assert props.get(key) == spec.get(key), (spec["TableName"], key)
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    for name in QUEUES:
        assert logical_id(name, "Queue") in resources


def test_partition_key_first_everywhere():
    for spec in table_specs():
        assert spec["KeySchema"][0]["KeyType"] == "HASH"
        for index in spec.get("GlobalSecondaryIndexes", []) + spec.get("LocalSecondaryIndexes", []):
            assert index["KeySchema"][0]["KeyType"] == "HASH"


def test_balance_changes_touch_only_the_balance_index():
    """Postings update balance/version/last_posted_at; only by_property_balance may carry
    them, so a posting costs one index write, not one per index."""
    moving = {"balance", "version", "last_posted_at"}
    accounts = next(s for s in table_specs() if s["TableName"] == "accounts")
    for index in accounts["GlobalSecondaryIndexes"]:
        keys = {k["AttributeName"] for k in index["KeySchema"]}
        # keys only, or (the room monitor's by_building_state) a few attributes a posting never changes
        assert index["Projection"]["ProjectionType"] in ("KEYS_ONLY", "INCLUDE")
        assert not set(index["Projection"].get("NonKeyAttributes", ())) & moving, index["IndexName"]
        if index["IndexName"] != "by_property_balance":
            assert not keys & moving, index["IndexName"]
