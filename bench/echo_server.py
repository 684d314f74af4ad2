#!/usr/bin/env python3
"""An echo server for the benchmarks: one process, asyncio, so it costs the
same for every contender. Usage: echo_server.py PORT [ADDRESS]  (prints "ready")"""
import asyncio
import sys


async def echo(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def main(port, address):
    server = await asyncio.start_server(echo, address, port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"))
