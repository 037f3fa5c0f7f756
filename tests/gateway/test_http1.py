"""The lean upstream client (llm/gateway/http1.py) against a loopback HTTP/1.1 server that
records the bytes of every request: the head it builds once per URL carries the headers and
the content length of each call."""

from __future__ import annotations

import asyncio

from opsloop.llm.gateway.http1 import Http1Pool


async def _recording_server(seen: list[bytes]) -> asyncio.Server:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            seen.append(head + await reader.readexactly(length))
            answer = b'{"ok": true}'
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(answer), answer))
            await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


def test_each_post_carries_its_own_headers_and_length() -> None:
    async def run() -> list[bytes]:
        seen: list[bytes] = []
        server = await _recording_server(seen)
        port = server.sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/v1/chat/completions?x=1"
        pool = Http1Pool()
        try:
            first = {"content-type": "application/json", "authorization": "Bearer one"}
            second = {"content-type": "application/json", "authorization": "Bearer two"}
            assert await pool.post(url, b'{"a": 1}', first) == (200, b'{"ok": true}')
            assert await pool.post(url, b'{"a": 10000}', first) == (200, b'{"ok": true}')
            assert await pool.post(url, b"{}", second) == (200, b'{"ok": true}')
            first["authorization"] = "Bearer changed"  # the same dict, changed in place
            assert await pool.post(url, b"[]", first) == (200, b'{"ok": true}')
        finally:
            pool.close()
            server.close()
            await server.wait_closed()
        return seen

    seen = asyncio.run(run())
    assert [request.split(b"\r\n")[0] for request in seen] == [
        b"POST /v1/chat/completions?x=1 HTTP/1.1"
    ] * 4
    keys = [
        next(line for line in r.split(b"\r\n") if line.startswith(b"authorization")) for r in seen
    ]
    assert keys == [b"authorization: Bearer one"] * 2 + [
        b"authorization: Bearer two",
        b"authorization: Bearer changed",
    ]
    assert [r.split(b"\r\n\r\n", 1)[1] for r in seen] == [
        b'{"a": 1}',
        b'{"a": 10000}',
        b"{}",
        b"[]",
    ]
    assert all(b"host: 127.0.0.1:" in r for r in seen)
