from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

REVOKED = "access.revoked"


def channel_for(namespace: str, account_id: uuid.UUID) -> str:
    """The one place that names a pub/sub channel: one per account, under the deployment's namespace
    (settings.redis.queue_name), since pub/sub ignores Redis database numbers."""
    return f"{namespace}:account:{account_id}"


def revocations_channel(namespace: str) -> str:
    """Where revoked keys and disabled accounts are announced, so that open sockets close at once."""
    return f"{namespace}:revocations"


def revocation_event(account_id: uuid.UUID, key_id: uuid.UUID | None = None) -> dict[str, Any]:
    """`keyId` null: the whole account was disabled. Sockets of the account re-check their access."""
    return {"type": REVOKED, "accountId": str(account_id), "keyId": str(key_id) if key_id else None}


async def publish_revocation(
    redis: Redis, namespace: str, account_id: uuid.UUID, key_id: uuid.UUID | None = None
) -> bool:
    """Announce; False if Redis did not take it (sockets then notice at their periodic re-check)."""
    try:
        await redis.publish(revocations_channel(namespace), json.dumps(revocation_event(account_id, key_id)))
    except (RedisError, OSError) as exc:
        log.warning("could not announce the revocation for account %s: %s", account_id, exc)
        return False
    return True


async def publish_event(redis: Redis, namespace: str, account_id: uuid.UUID, event: dict[str, Any]) -> None:
    """Publish; a Redis hiccup loses this event only (clients resync from the snapshot), never the export."""
    try:
        await redis.publish(channel_for(namespace, account_id), json.dumps(event))
    except (RedisError, OSError) as exc:
        log.warning("could not publish %s for %s: %s", event.get("type"), event.get("exportId"), exc)
