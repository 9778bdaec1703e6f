"""The emulator's Query (infra/local/moto_app.py reads one partition instead of sorting the
whole table) answers as DynamoDB does: every answer here is checked against a plain Python
model of the items put, over key conditions, order, limits, pages, filters and indexes."""

import random
import uuid

import boto3
import pytest
from boto3.dynamodb.conditions import Attr, Key


@pytest.fixture(scope="module")
def tables(aws):
    ddb = boto3.resource("dynamodb")
    name = f"query-model-{uuid.uuid4().hex[:8]}"
    table = ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "g", "gs")],
        GlobalSecondaryIndexes=[
            {"IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"},
                                                {"AttributeName": "gs", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "ALL"}},
            {"IndexName": "by_g_only", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
             "Projection": {"ProjectionType": "ALL"}},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    plain = ddb.create_table(
        TableName=f"{name}-h",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    rng = random.Random(11)
    items = []
    for p in range(12):
        for s in range(rng.randrange(0, 40)):
            item = {"pk": f"p{p:02d}", "sk": f"s{rng.randrange(1000):03d}#{s}", "n": rng.randrange(100)}
            if rng.random() < 0.8:  # some items are not in the index: no g
                item["g"] = f"g{rng.randrange(4)}"
                if rng.random() < 0.9:
                    item["gs"] = f"{rng.randrange(50):02d}"
            items.append(item)
    with table.batch_writer() as w:
        for item in items:
            w.put_item(Item=item)
    with plain.batch_writer() as w:
        for p in range(30):
            w.put_item(Item={"pk": f"h{p:02d}", "n": p})
    yield table, plain, items
    table.delete()
    plain.delete()


def _all_pages(table, **kwargs):
    out, pages = [], 0
    while True:
        got = table.query(**kwargs)
        out.extend(got["Items"])
        pages += 1
        if "LastEvaluatedKey" not in got:
            return out, pages
        kwargs["ExclusiveStartKey"] = got["LastEvaluatedKey"]


def _keys(items):
    return [(i["pk"], i["sk"]) for i in items]


@pytest.mark.parametrize("pk", ["p00", "p03", "p07", "p11", "nobody"])
def test_a_partition_in_key_order_both_ways_in_pages(tables, pk):
    table, _, items = tables
    expected = sorted((i for i in items if i["pk"] == pk), key=lambda i: i["sk"])
    got, _ = _all_pages(table, KeyConditionExpression=Key("pk").eq(pk))
    assert _keys(got) == _keys(expected)
    got, pages = _all_pages(table, KeyConditionExpression=Key("pk").eq(pk), ScanIndexForward=False, Limit=7)
    assert _keys(got) == _keys(expected[::-1])
    assert pages >= -(-len(expected) // 7)  # pages of at most 7


def test_range_conditions_and_filters(tables):
    table, _, items = tables
    for pk in ("p01", "p05", "p09"):
        part = sorted((i for i in items if i["pk"] == pk), key=lambda i: i["sk"])
        got = table.query(KeyConditionExpression=Key("pk").eq(pk) & Key("sk").begins_with("s5"))["Items"]
        assert _keys(got) == _keys([i for i in part if i["sk"].startswith("s5")])
        got = table.query(KeyConditionExpression=Key("pk").eq(pk) & Key("sk").between("s200", "s700"))["Items"]
        assert _keys(got) == _keys([i for i in part if "s200" <= i["sk"] <= "s700"])
        got, _ = _all_pages(table, KeyConditionExpression=Key("pk").eq(pk) & Key("sk").gt("s300"),
                            FilterExpression=Attr("n").lt(50), Limit=5)
        assert _keys(got) == _keys([i for i in part if i["sk"] > "s300" and i["n"] < 50])
        got = table.query(KeyConditionExpression=Key("pk").eq(pk), Select="COUNT")
        assert got["Count"] == len(part)


@pytest.mark.parametrize("g", ["g0", "g1", "g2", "g3"])
def test_an_index_query_sees_every_partition_in_index_order(tables, g):
    table, _, items = tables
    indexed = [i for i in items if i.get("g") == g and "gs" in i]
    expected = sorted(indexed, key=lambda i: (i["gs"], i["pk"], i["sk"]))
    got, _ = _all_pages(table, IndexName="by_g", KeyConditionExpression=Key("g").eq(g), Limit=9)
    assert sorted(_keys(got)) == sorted(_keys(expected))
    assert [i["gs"] for i in got] == [i["gs"] for i in expected]
    got = table.query(IndexName="by_g", KeyConditionExpression=Key("g").eq(g) & Key("gs").lt("25"),
                      ScanIndexForward=False)["Items"]
    assert [i["gs"] for i in got] == sorted((i["gs"] for i in indexed if i["gs"] < "25"), reverse=True)
    got, _ = _all_pages(table, IndexName="by_g_only", KeyConditionExpression=Key("g").eq(g), Limit=11)
    assert sorted(_keys(got)) == sorted(_keys(i for i in items if i.get("g") == g))


def test_a_hash_only_table(tables):
    _, plain, _ = tables
    assert plain.query(KeyConditionExpression=Key("pk").eq("h07"))["Items"] == [{"pk": "h07", "n": 7}]
    assert plain.query(KeyConditionExpression=Key("pk").eq("h99"))["Items"] == []


def test_writes_between_queries_are_seen(tables):
    table, _, items = tables
    table.put_item(Item={"pk": "p02", "sk": "s000#new", "n": 1, "g": "g9", "gs": "00"})
    try:
        got = table.query(KeyConditionExpression=Key("pk").eq("p02"))["Items"]
        assert got[0]["sk"] == "s000#new"
        assert len(got) == 1 + sum(1 for i in items if i["pk"] == "p02")
        got = table.query(IndexName="by_g", KeyConditionExpression=Key("g").eq("g9"))["Items"]
        assert _keys(got) == [("p02", "s000#new")]
    finally:
        table.delete_item(Key={"pk": "p02", "sk": "s000#new"})
    assert table.query(IndexName="by_g", KeyConditionExpression=Key("g").eq("g9"))["Items"] == []
