"""The HTTP/1.1 connection handler ``maskwatch serve`` runs under uvicorn: uvicorn's h11 protocol with a
header timeout, so that a client that sends its request headers slowly (a line every few seconds, or
nothing at all after connecting) is disconnected instead of holding a connection for ever."""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = 10.0


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's ``H11Protocol``; a request's headers must arrive whole within ``header_timeout`` seconds
    of the connection opening (or of the previous response on a kept-alive connection)."""

    header_timeout = HEADER_TIMEOUT_S  # ``create_app`` sets it from the service's settings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _timed_out(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():  # headers not all here yet
            self.logger.info("closing a connection whose request headers took over %g s", self.header_timeout)
            self.transport.close()
