#!/usr/bin/env python3
"""A user-mode scanning service for the sample antivirus (palisade run --param antivirus.scanService=NAME).

It runs inside or outside `palisade run` and talks to the driver through the driver's communication port NAME, the
socket $PALISADE_HOME/ports/NAME (docs/ports.md, standard library only). The driver sends one message per open it
holds, "ID PATH"; the service scans PATH and sends back the message "ID clean" or "ID infected:NAME", which completes
the held open. While it is connected its own file reads are kept out of the antivirus's callbacks, so it may read the
files it scans. It looks for the EICAR test string only: a real engine goes here. With --ready PATH it opens PATH for
writing and closes it once it is connected (a FIFO a script waits on with `cat PATH`).

usage: scan-service.py SOCKET [--ready PATH]
"""
import os
import sys

sys.dont_write_bytecode = True  # the shared module sits beside the samples, in the repository: leave no cache there
from palisade_port import connect, messages, send  # noqa: E402

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def scan(path):
    try:
        with open(path, "rb") as f:
            return "infected:EICAR-Test-File" if EICAR in f.read(1 << 20) else "clean"
    except OSError as e:
        return "error-" + (os.strerror(e.errno).replace(" ", "-") if e.errno else "unreadable")


def main():
    sock = connect(sys.argv[1], "scan-service")
    print("scan-service: ready", file=sys.stderr, flush=True)
    if len(sys.argv) == 4 and sys.argv[2] == "--ready":
        open(sys.argv[3], "w").close()
    for message in messages(sock):
        request_id, path = message.split(" ", 1)
        send(sock, request_id + " " + scan(path))


if __name__ == "__main__":
    main()
