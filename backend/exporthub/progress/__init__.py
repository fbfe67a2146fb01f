"""Progress events: what workers publish on Redis pub/sub and what the web pushes to clients.

Every event is a JSON object on the account's channel, `channel_for(namespace, account_id)`, the
namespace being EXPORTHUB_QUEUE_NAME. What an export's events say is the domain's business
(exports/events.py); this package only carries them.

Revoked keys and disabled accounts are announced on one channel of their own,
`revocations_channel(namespace)`: `{"type": "access.revoked", "accountId": "uuid", "keyId": "uuid" | null}`.

Events are fire-and-forget: a client that was disconnected reads the current state from the API
(or the snapshot a socket sends on connect) rather than replaying events.
"""

from exporthub.progress.events import (
    REVOKED,
    channel_for,
    publish_event,
    publish_revocation,
    revocations_channel,
)

__all__ = ["REVOKED", "channel_for", "publish_event", "publish_revocation", "revocations_channel"]
