#!/usr/bin/env python3
"""A user-mode scanning service for the sample antivirus (palisade run --param antivirus.scanService=FOLDER).

It runs under the same `palisade run` as the programs it protects, and talks to the driver through the channel folder
(drivers/Shared/ServiceChannel.cs): it opens FOLDER/requests read-write, which tells the driver it is the service (its
own opens are then never held or scanned), reads one request per line ("ID PATH"), scans PATH, and answers by creating
FOLDER/ID.clean or FOLDER/ID.infected:NAME, which completes the held open. It looks for the EICAR test string only: a
real engine goes here. With --ready PATH it opens PATH for writing and closes it once it listens (a FIFO a script waits
on with `cat PATH`).

usage: scan-service.py FOLDER [--ready PATH]
"""
import os
import sys

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def scan(path):
    try:
        with open(path, "rb") as f:
            return "infected:EICAR-Test-File" if EICAR in f.read(1 << 20) else "clean"
    except OSError as e:
        return "error-" + (os.strerror(e.errno).replace(" ", "-") if e.errno else "unreadable")


def answer(folder, request_id, verdict):
    name = os.path.join(folder, request_id + "." + verdict)
    os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o600))
    os.unlink(name)


def main():
    folder = sys.argv[1]
    requests = os.path.join(folder, "requests")
    if not os.path.exists(requests):
        os.mkfifo(requests, 0o600)
    # Read-write, so that the FIFO never reports end of file between the driver's writes.
    with open(os.open(requests, os.O_RDWR), "r", buffering=1) as lines:
        print("scan-service: ready", file=sys.stderr, flush=True)
        if len(sys.argv) == 4 and sys.argv[2] == "--ready":
            open(sys.argv[3], "w").close()
        for line in lines:
            request_id, path = line.rstrip("\n").split(" ", 1)
            answer(folder, request_id, scan(path))


if __name__ == "__main__":
    main()
