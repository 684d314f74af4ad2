#!/usr/bin/env python3
"""A bulk sender for the data-path benchmark: answers any HTTP GET /N with N
bytes (Content-Length set), one thread per connection, from one reusable
buffer so the sender costs the same for every contender.

Usage: bulk_server.py PORT   (prints "ready")"""
import socket
import socketserver
import sys

CHUNK = memoryview(b"\x5a" * (1 << 20))


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        data = b""
        while b"\r\n\r\n" not in data:
            more = self.request.recv(4096)
            if not more:
                return
            data += more
        try:
            size = int(data.split(b" ", 2)[1].lstrip(b"/") or b"0")
        except (IndexError, ValueError):
            size = 0
        self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             b"Connection: close\r\nContent-Length: %d\r\n\r\n" % size)
        while size > 0:
            n = min(size, len(CHUNK))
            self.request.sendall(CHUNK[:n])
            size -= n
        self.request.shutdown(socket.SHUT_WR)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    with Server(("127.0.0.1", int(sys.argv[1])), Handler) as srv:
        print("ready", flush=True)
        srv.serve_forever()
