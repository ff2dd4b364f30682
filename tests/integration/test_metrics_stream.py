"""A plain /metrics body bigger than one write is streamed piece by piece: the same bytes as the
joined body, with its Content-Length (no chunked encoding); gzip is written as its members, one
after the other, with their total length."""

import asyncio
import gzip
import urllib.request

from aiohttp import web

from exporter.http.routes import make_app
from exporter.runtime.serve import STREAM_CHUNK
from tests.support.process import free_port


class BigBody:
    """Stands in for the Exporter: what the handler asks of it, with a body of many pieces."""

    def __init__(self) -> None:
        self.pieces = [f'm{{i="{i}"}} {i * 7}\n'.encode() * 40 for i in range(6000)]

    def plain_pieces(self) -> list[bytes]:
        return list(self.pieces)

    def gzip_pieces(self) -> list[bytes]:
        # As the exporter keeps them: the body's members, then the dynamic part's.
        return [gzip.compress(b"".join(self.pieces[:-10])), gzip.compress(b"".join(self.pieces[-10:]))]


async def test_a_plain_body_of_many_megabytes_streams_whole_with_its_length():
    exporter = BigBody()
    want = b"".join(exporter.pieces)
    assert len(want) > 3 * STREAM_CHUNK
    runner = web.AppRunner(make_app(exporter, STREAM_CHUNK))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        def get(headers):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.read(), dict(resp.headers)
        body, headers = await asyncio.to_thread(get, {})
        assert body == want
        assert int(headers["Content-Length"]) == len(want) and "Transfer-Encoding" not in headers
        packed, headers = await asyncio.to_thread(get, {"Accept-Encoding": "gzip"})
        assert headers["Content-Encoding"] == "gzip" and gzip.decompress(packed) == want
        assert int(headers["Content-Length"]) == len(packed) and "Transfer-Encoding" not in headers
    finally:
        await runner.cleanup()
