"""The Python 3.11 + boto3 handler of the system this processor replaces, kept as the baseline
of `cargo xtask bench`.

For each EventBridge event it does what that handler did: a JSON round trip that turns every
float into a Decimal (DynamoDB refuses floats), one market-data item (uuid4 event id, ISO
timestamp, exchange and symbol, the detail's fields, a 30-day TTL) and one audit entry, both
written with `put_item` through boto3's `Table` resource. It validates nothing and does not
de-duplicate: it is the cheaper program of the two, so the comparison flatters it.

The clients are created at import, outside the handler, as Lambda's Python guidance says, so
an invocation pays only for its own work.
"""

import json
import os
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import boto3

TTL_DAYS = 30

_dynamodb = boto3.resource("dynamodb")
_market_data = _dynamodb.Table(os.environ["MARKET_DATA_TABLE"])
_audit_trail = _dynamodb.Table(os.environ["AUDIT_TRAIL_TABLE"])
_environment = os.environ.get("ENVIRONMENT", "dev")


def handler(event, context):
    event = json.loads(json.dumps(event), parse_float=Decimal)
    detail = event.get("detail") or {}
    now = datetime.now(timezone.utc)
    timestamp = now.isoformat()
    expires_at = int((now + timedelta(days=TTL_DAYS)).timestamp())
    request_id = getattr(context, "aws_request_id", "")

    item = {key: value for key, value in detail.items() if value is not None}
    item.update(
        {
            "event_id": str(uuid.uuid4()),
            "timestamp": timestamp,
            "source_event_id": event.get("id"),
            "event_type": event.get("detail-type"),
            "source": event.get("source"),
            "received_at": timestamp,
            "request_id": request_id,
            "expires_at": expires_at,
        }
    )
    _market_data.put_item(Item=item)

    _audit_trail.put_item(
        Item={
            "audit_id": str(uuid.uuid4()),
            "timestamp": timestamp,
            "event_id": item["event_id"],
            "source_event_id": event.get("id"),
            "event_type": event.get("detail-type") or "unknown",
            "status": "PROCESSED",
            "request_id": request_id,
            "environment": _environment,
            "expires_at": expires_at,
        }
    )
    return {"status": "PROCESSED", "event_id": item["event_id"]}
