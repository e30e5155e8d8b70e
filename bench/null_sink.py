"""A Braze stand-in that does no work: the ceiling of a client, measured alone.

    python bench/null_sink.py            # prints `null sink listening on http://127.0.0.1:<port>`

Every request gets `201 {"message":"success"}` (what Braze answers a good
`/users/track`) once its body is read, which is skipped, not parsed: no
authentication, no JSON, no counting of objects. The only bookkeeping is a
request counter, which `GET /_sink/stats` returns (that request not counted).
HTTP/1.1 keep-alive, any number of connections, one asyncio loop in a
process of its own, so that the client measured shares no GIL with it and
the sink's own CPU stays small next to an emulator's.
"""

from __future__ import annotations

import argparse
import asyncio
import json

REPLY_BODY = b'{"message":"success"}'
REPLY = (
    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
    b"Content-Length: " + str(len(REPLY_BODY)).encode() + b"\r\n\r\n" + REPLY_BODY
)
STATS_PATH = b"/_sink/stats"


class NullSink:
    def __init__(self) -> None:
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                if head.split(b" ", 2)[1] == STATS_PATH:
                    body = json.dumps({"requests": self.requests}).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                        + str(len(body)).encode()
                        + b"\r\n\r\n"
                        + body
                    )
                else:
                    self.requests += 1
                    writer.write(REPLY)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()


async def serve(port: int) -> None:
    sink = NullSink()
    server = await asyncio.start_server(sink.handle, "127.0.0.1", port, limit=1 << 20)
    bound = server.sockets[0].getsockname()[1]
    print(f"null sink listening on http://127.0.0.1:{bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port (default)")
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
