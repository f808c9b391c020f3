"""The one exception the portal raises for a refused request: a status, a code and a reason."""

from __future__ import annotations

from typing import Any


class PortalError(Exception):
    """A 4xx (or 503) answer: ``{"error": code, "reason": text, **extra}``.

    ``code`` is stable and machine-readable (the uploader branches on it); ``reason`` is for people.
    """

    def __init__(self, status: int, code: str, reason: str, headers: dict[str, str] | None = None,
                 **extra: Any):
        super().__init__(f"{status} {code}: {reason}")
        self.status, self.code, self.reason = status, code, reason
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "reason": self.reason, **self.extra}
