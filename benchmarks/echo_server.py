"""The baseline: a bare Trio length-prefixed echo server (one task per connection, the same
framing as the host). ``python benchmarks/echo_server.py PORT``"""

from __future__ import annotations

import sys

import trio

from codec.framing import LengthPrefixedDecoder, prefix_length


async def handle(stream: trio.SocketStream) -> None:
    decoder = LengthPrefixedDecoder(65535)
    try:
        while data := await stream.receive_some(65536):
            for body in decoder.feed(data):
                await stream.send_all(prefix_length(body))
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass


async def main(port: int) -> None:
    await trio.serve_tcp(handle, port, host="127.0.0.1")


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]))
