"""Signed webhooks: when an export completes, fails or is cancelled, POST a signed JSON event to its
`webhook_url`, retried with backoff for up to a day, every attempt recorded.

- signing.py    the `ExportHub-Signature` header (HMAC-SHA256 of "{t}.{body}"), secrets, verification
- addresses.py  SSRF guard: resolve the host, refuse internal addresses (at submit and at delivery)
- store.py      webhook_secrets, webhook_events (the outbox), webhook_attempts
- delivery.py   one attempt, the retry schedule, the dispatcher each worker runs

What an event says, and when one is recorded, is the domain's business (exports/events.py).
"""

from exporthub.webhooks.addresses import AddressPolicy, WebhookUrlRefused, resolve_checked
from exporthub.webhooks.delivery import WebhookDispatcher, retry_delay
from exporthub.webhooks.signing import SIGNATURE_HEADER, InvalidSignature, signature_header, verify_signature

__all__ = [
    "SIGNATURE_HEADER",
    "AddressPolicy",
    "InvalidSignature",
    "WebhookDispatcher",
    "WebhookUrlRefused",
    "resolve_checked",
    "retry_delay",
    "signature_header",
    "verify_signature",
]
