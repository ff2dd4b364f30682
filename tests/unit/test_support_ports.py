"""The tests' port picker never hands out one port twice, even when the kernel offers it again."""

import socket

from tests.support import process


def test_free_port_skips_a_port_it_handed_out(monkeypatch):
    first = process.free_port()
    offered = [first, first]                  # the kernel offering the same port twice more

    class Offering(socket.socket):
        def getsockname(self):
            return ("127.0.0.1", offered.pop()) if offered else super().getsockname()

    monkeypatch.setattr(process.socket, "socket", Offering)
    second = process.free_port()
    assert not offered, "the picker did not ask again"
    assert second != first and {first, second} <= process._handed_out
