"""A real FTP server for the --inbound tests: pyftpdlib (Debian's
python3-pyftpdlib, run with /usr/bin/python3), anonymous, read-only,
serving DIR on 127.0.0.1:PORT.

    /usr/bin/python3 ftp_server.py PORT DIR LOG

For every active-mode data address a client gives (PORT or EPRT) it
appends to LOG a line "PORT <port> <owner>", where <owner> is the program
that listens on that port (from ss -ltnp): under --inbound it must be the
SOCKS proxy, never the client itself.
"""
import re
import subprocess
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

PORT, ROOT, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3]


def owner(port):
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True,
                         text=True).stdout
    found = re.findall(r'users:\(\("([^"]+)"', out)
    return found[0] if found else "nobody"


class Handler(FTPHandler):
    def note(self, port):
        with open(LOG, "a") as f:
            f.write(f"PORT {port} {owner(port)}\n")

    def ftp_PORT(self, line):
        parts = line.split(",")
        if len(parts) == 6:
            self.note(int(parts[4]) * 256 + int(parts[5]))
        return super().ftp_PORT(line)

    def ftp_EPRT(self, line):
        fields = line.split(line[0]) if line else []
        if len(fields) >= 4 and fields[3].isdigit():
            self.note(int(fields[3]))
        return super().ftp_EPRT(line)


authorizer = DummyAuthorizer()
authorizer.add_anonymous(ROOT)
Handler.authorizer = authorizer
FTPServer(("127.0.0.1", PORT), Handler).serve_forever()
