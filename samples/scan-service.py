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
import socket
import struct
import sys

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
HEADER = struct.Struct("<BBHIQ")  # type, flags, reserved, status, id
HELLO, CONNECT, CONNECTED, MESSAGE = 1, 2, 3, 4


def scan(path):
    try:
        with open(path, "rb") as f:
            return "infected:EICAR-Test-File" if EICAR in f.read(1 << 20) else "clean"
    except OSError as e:
        return "error-" + (os.strerror(e.errno).replace(" ", "-") if e.errno else "unreadable")


def connect(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(path)
    if sock.recv(65600)[0] != HELLO:
        sys.exit("scan-service: the port did not greet")
    sock.send(HEADER.pack(CONNECT, 0, 0, 0, 0) + struct.pack("<II", 0, 0))
    kind, _, _, status, _ = HEADER.unpack_from(sock.recv(65600))
    if kind != CONNECTED or status >> 30 in (2, 3):
        sys.exit("scan-service: refused, status 0x%08X" % status)
    return sock


def main():
    sock = connect(sys.argv[1])
    print("scan-service: ready", file=sys.stderr, flush=True)
    if len(sys.argv) == 4 and sys.argv[2] == "--ready":
        open(sys.argv[3], "w").close()
    while True:
        record = sock.recv(65600)
        if len(record) < HEADER.size:
            break  # The run ended (the driver unloaded).
        if record[0] != MESSAGE:
            continue
        request_id, path = record[HEADER.size:].decode().split(" ", 1)
        sock.send(HEADER.pack(MESSAGE, 0, 0, 0, 0) + (request_id + " " + scan(path)).encode())


if __name__ == "__main__":
    main()
