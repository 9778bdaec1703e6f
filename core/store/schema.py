"""Table definitions derived from the pynamodb models, in DynamoDB's CreateTable shape.

The local bootstrap creates tables from these specs and infra/resources.py renders the
same specs into the CloudFormation resources that serverless.yml includes, so the two
cannot drift (tests/unit/test_resources.py compares them).
"""

from __future__ import annotations

from pynamodb.models import Model

from core.settings import resource_name
from core.store.models import ALL_MODELS


def _keys(key_schema: list[dict]) -> list[dict]:
    # DynamoDB and CloudFormation want the partition key first.
    return sorted(
        ({"AttributeName": k["AttributeName"], "KeyType": k["KeyType"]} for k in key_schema),
        key=lambda k: k["KeyType"] != "HASH",
    )


def table_spec(model: type[Model]) -> dict:
    """CreateTable parameters for one model (TableName without the stage prefix)."""
    schema = model._get_schema()  # the one place that reads pynamodb's schema
    attrs: dict[str, str] = {}
    for a in schema["attribute_definitions"]:
        attrs[a["AttributeName"]] = a["AttributeType"]
    spec: dict = {
        "TableName": logical_name(model),
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": _keys(schema["key_schema"]),
    }
    for kind, out in (
        ("global_secondary_indexes", "GlobalSecondaryIndexes"),
        ("local_secondary_indexes", "LocalSecondaryIndexes"),
    ):
        indexes = []
        for index in sorted(schema[kind], key=lambda i: i["index_name"]):
            for a in index["attribute_definitions"]:
                attrs[a["AttributeName"]] = a["AttributeType"]
            indexes.append(
                {
                    "IndexName": index["index_name"],
                    "KeySchema": _keys(index["key_schema"]),
                    "Projection": dict(index["projection"]),
                }
            )
        if indexes:
            spec[out] = indexes
    view = getattr(model.Meta, "stream_view_type", None)
    if view:  # a DynamoDB stream (the events table's feeds the notification router)
        spec["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    spec["AttributeDefinitions"] = [
        {"AttributeName": n, "AttributeType": t} for n, t in sorted(attrs.items())
    ]
    return spec


def logical_name(model: type[Model]) -> str:
    prefix = resource_name("")
    return model.Meta.table_name.removeprefix(prefix)


def table_specs() -> list[dict]:
    return [table_spec(m) for m in ALL_MODELS]


def time_to_live() -> dict[str, str]:
    """Tables with a TTL attribute (pynamodb TTLAttribute): {table name without the stage
    prefix: attribute name}. Not part of CreateTable: the bootstrap turns TTL on with
    UpdateTimeToLive and the rendered resources carry TimeToLiveSpecification."""
    out = {}
    for m in ALL_MODELS:
        attr = m._ttl_attribute()
        if attr is not None:
            out[logical_name(m)] = attr.attr_name
    return out
