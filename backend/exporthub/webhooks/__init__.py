"""Signed webhooks: when an export completes, fails or is cancelled, POST a signed JSON event to its
`webhook_url`, retried with backoff for up to a day, every attempt recorded.

- signing.py    the `ExportHub-Signature` header (HMAC-SHA256 of "{t}.{body}"), secrets, verification
- addresses.py  SSRF guard: resolve the host, refuse internal addresses (at submit and at delivery)
- store.py      webhook_secrets, webhook_events (the outbox), webhook_attempts
- delivery.py   the event body, one attempt, the retry schedule, the dispatcher each worker runs
"""

from exporthub.webhooks.addresses import AddressPolicy, WebhookUrlRefused, resolve_checked
from exporthub.webhooks.delivery import EVENT_NAMES, WebhookDispatcher, record_export_event, retry_delay
from exporthub.webhooks.signing import SIGNATURE_HEADER, InvalidSignature, signature_header, verify_signature

__all__ = [
    "EVENT_NAMES",
    "SIGNATURE_HEADER",
    "AddressPolicy",
    "InvalidSignature",
    "WebhookDispatcher",
    "WebhookUrlRefused",
    "record_export_event",
    "resolve_checked",
    "retry_delay",
    "signature_header",
    "verify_signature",
]
