"""The error tree. Domain errors carry fields, not HTTP status codes; web/errors.py maps them.

ExportHubError
├── ConfigError(name, reason)                 bad setting at start-up
├── CatalogInvalid(path, problems)            a catalog file, or the database under it, at fault
├── InvalidRequest(problems)                  one or more fields at fault -> 422
├── NotFound(kind, id)                        unknown, or another account's -> 404
├── ResourceNotAllowed(resource)              the API key is limited to other resources -> 403
├── Conflict(reason)                          idempotency key reuse, cancel a finished export -> 409
├── TooManyActiveExports(limit, retry_after)  per-account cap -> 429
├── TooManyExportsStarted(limit, window_seconds, retry_after, rate, policy)
│                                             per-account start rate -> 429 with RateLimit headers
├── LinkError                                 download links
│   ├── LinkInvalid                           tampered -> 403
│   └── LinkExpired                           past its expiry -> 410
└── ExportFailed(message, transient)          raised inside a running export
"""

from __future__ import annotations

import dataclasses


class ExportHubError(Exception):
    """Base of every error the product raises on purpose."""


class ConfigError(ExportHubError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"setting {name}: {reason}")
        self.name = name
        self.reason = reason


class CatalogInvalid(ExportHubError):
    """`problems` name the place, as `payroll.columns.grossPay: declared money, the database says text`."""

    def __init__(self, path: object, problems: list[str]) -> None:
        super().__init__("\n".join(f"{path}: {p}" for p in problems))
        self.path = path
        self.problems = problems


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    """One field at fault: `field` is a dotted path in the request's camelCase names."""

    field: str
    message: str


class InvalidRequest(ExportHubError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


class NotFound(ExportHubError):
    def __init__(self, kind: str, id: object) -> None:
        super().__init__(f"{kind} {id} not found")
        self.kind = kind
        self.id = id


class ResourceNotAllowed(ExportHubError):
    def __init__(self, resource: str) -> None:
        super().__init__(f"this API key may not export {resource!r}; GET /api/v1/resources lists what it may")
        self.resource = resource


class Conflict(ExportHubError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TooManyActiveExports(ExportHubError):
    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(
            f"this account already has {limit} exports queued or running; "
            f"wait for one to finish or cancel one, then try again"
        )
        self.limit = limit
        self.retry_after = retry_after


class TooManyExportsStarted(ExportHubError):
    """The account has started as many exports as its rate allows in the window. `rate` in words
    ("10 exports per minute"); `policy` names the limit in the RateLimit headers."""

    def __init__(self, limit: int, window_seconds: int, *, retry_after: int, rate: str, policy: str) -> None:
        super().__init__(f"this account may start at most {rate}; try again in {retry_after} s")
        self.limit = limit
        self.window_seconds = window_seconds
        self.retry_after = retry_after
        self.rate = rate
        self.policy = policy


class LinkError(ExportHubError):
    pass


class LinkInvalid(LinkError):
    def __init__(self) -> None:
        super().__init__("this download link is not valid; request a new one from the export's status")


class LinkExpired(LinkError):
    def __init__(self) -> None:
        super().__init__("this download link has expired; run the export again to get a fresh file")


class ExportFailed(ExportHubError):
    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
