"""``X-Lokiserve-Memory-Version`` on every OpenAI-API response.

The memory admin API and vLLM's OpenAI server run in one process over one
engine, so the memory version the admin API last committed is the one the
engine serves. This ASGI middleware (installed into vLLM's app with vLLM's
own ``--middleware`` flag) stamps it on each ``/v1/...`` response as its
headers go out: for a plain request that is when generation has finished,
for a streamed one when the stream starts. Either way the version was live
while the request ran. A stream that spans a change keeps the header it
started with; its tokens after the change come from the new memory (the
change preempts and recomputes running requests).
"""

from __future__ import annotations

HEADER = b"x-lokiserve-memory-version"


class LiveVersion:
    """The committed memory version of this process (set by ``MemoryService``)."""

    value: int | None = None


live_version = LiveVersion()


class MemoryVersionHeader:
    """Pure ASGI middleware (streaming passes through untouched)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope.get("path", "").startswith("/v1/"):
            return await self.app(scope, receive, send)

        async def stamped(message):
            if message["type"] == "http.response.start" and live_version.value is not None:
                headers = [h for h in message.get("headers", []) if h[0].lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, str(live_version.value).encode())]}
            await send(message)

        return await self.app(scope, receive, stamped)


__all__ = ["HEADER", "live_version", "MemoryVersionHeader"]
