"""Sending a request again when the broker went away and came back.

A ZeroMQ socket monitor on the client's DEALER reports each disconnection
and connection; a connection after a disconnection is a comeback (the broker
restarted, or the network path came back), after which a request that got
no reply may never reach one: a call sends it again, with the same id,
within its timeout. Only idempotent requests are sent again: Status, Wait,
Fetch, Cancel, Delete, Stats, and a Submit with a request_key (the broker
answers a repeated one with the first one's handle); never a Submit without
a key. A Wait's or a Submit's time to hold the reply goes again as what is
left of it.
"""

from __future__ import annotations

import time
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

EVENTS = zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED

# A call looks at its DEALER alone this long before it also watches the
# monitor: a reply on its way costs nothing more.
LOOK_MS = 20

_IDEMPOTENT = ("status", "wait", "fetch", "cancel", "delete", "stats")


class Comebacks:
    """The monitor of one socket's connection to the broker."""

    def __init__(self, sock: zmq.Socket) -> None:
        self.socket = sock.get_monitor_socket(EVENTS)
        self._down = False

    def read(self) -> bool:
        """Reads the events that wait; True if the broker came back."""
        back = False
        while True:
            try:
                ev = recv_monitor_message(self.socket, zmq.NOBLOCK)
            except zmq.Again:
                return back
            if ev["event"] == zmq.EVENT_DISCONNECTED:
                self._down = True
            elif ev["event"] == zmq.EVENT_CONNECTED and self._down:
                self._down = False
                back = True

    def feed(self, frames: list) -> bool:
        """One event already received (an asyncio reader); True on a comeback."""
        event = int.from_bytes(frames[0][:2], "little")
        if event == zmq.EVENT_DISCONNECTED:
            self._down = True
        elif event == zmq.EVENT_CONNECTED and self._down:
            self._down = False
            return True
        return False

    def close(self, sock: zmq.Socket) -> None:
        try:
            sock.disable_monitor()
        except zmq.ZMQError:
            pass
        self.socket.close(0)


def idempotent(req: Any) -> bool:
    body = req.WhichOneof("body")
    return body in _IDEMPOTENT or (body == "submit" and bool(req.submit.request_key))


def again(req: Any, hold_ms: int, start: float) -> bytes:
    """The request to send again: what is left of the time it asked the
    broker to hold the reply."""
    left = max(0, hold_ms - int((time.monotonic() - start) * 1000))
    body = req.WhichOneof("body")
    if body == "wait":
        req.wait.timeout_ms = left
    elif body == "submit":
        req.submit.async_timeout_ms = left
    return req.SerializeToString()
