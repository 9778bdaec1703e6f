"""The emulator's changes (infra/local/moto_app.py) answer as AWS does: its Query (one
partition read instead of a sorted copy of the whole table) is checked against a plain
Python model of the items put, over key conditions, order, limits, pages, filters and
indexes; its SendMessage (no message counting) still deduplicates and counts."""

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
        first = part[0]["sk"] if part else "x"
        cases = ((Key("sk").lt("s400"), lambda k: k < "s400"), (Key("sk").lte("s400#3"), lambda k: k <= "s400#3"),
                 (Key("sk").gte("s600"), lambda k: k >= "s600"), (Key("sk").eq(first), lambda k, f=first: k == f))
        for cond, keep in cases:
            got, _ = _all_pages(table, KeyConditionExpression=Key("pk").eq(pk) & cond, Limit=4, ScanIndexForward=False)
            assert _keys(got) == _keys([i for i in part if keep(i["sk"])][::-1])
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


def test_sending_still_deduplicates_and_queue_attributes_still_count(aws):
    """SendMessage no longer counts the queue's messages (moto_app.py, the sixth change):
    deduplication by id and by content, and GetQueueAttributes' counts, are as before."""
    sqs = boto3.client("sqs")
    name = uuid.uuid4().hex[:8]
    by_id = sqs.create_queue(QueueName=f"{name}-id.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    by_content = sqs.create_queue(QueueName=f"{name}-c.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    plain = sqs.create_queue(QueueName=f"{name}-std")["QueueUrl"]
    for i in range(6):
        sqs.send_message(QueueUrl=by_id, MessageBody=f"m{i}", MessageGroupId="g", MessageDeduplicationId=f"d{i % 3}")
        sqs.send_message(QueueUrl=by_content, MessageBody=f"m{i % 2}", MessageGroupId="g")
        sqs.send_message(QueueUrl=plain, MessageBody="same")
    with pytest.raises(sqs.exceptions.ClientError) as e:  # no dedup id and no content dedup: refused
        sqs.send_message(QueueUrl=by_id, MessageBody="x", MessageGroupId="g")
    assert "ContentBasedDeduplication" in str(e.value)
    sqs.send_message_batch(QueueUrl=by_id, Entries=[
        {"Id": "a", "MessageBody": "b1", "MessageGroupId": "g", "MessageDeduplicationId": "d0"},
        {"Id": "b", "MessageBody": "b2", "MessageGroupId": "g", "MessageDeduplicationId": "d9"}])

    def count(url):
        got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return int(got["ApproximateNumberOfMessages"])

    assert (count(by_id), count(by_content), count(plain)) == (4, 2, 6)  # d0 d1 d2 d9; m0 m1; six
    got = sqs.receive_message(QueueUrl=by_id, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["m0", "m1", "m2", "b2"]
    attrs = sqs.get_queue_attributes(QueueUrl=by_id, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "4" and attrs["ContentBasedDeduplication"] == "false"
