#!/usr/bin/env python3
"""The prompt program of the sample firewall's "ask" rules (palisade run --param firewall.prompt=FOLDER).

It runs under the same `palisade run` as the programs it asks about, and talks to the driver through the channel
folder (drivers/Shared/ServiceChannel.cs): it opens FOLDER/requests read-write, reads one question per line
("ID connect PROGRAM PROTOCOL ADDRESS PORT user UID"), and answers by creating FOLDER/ID.allow or FOLDER/ID.block, which
completes the held connection. Each question is asked on the terminal (/dev/tty); with --answer allow|block every
question gets that answer without asking (for scripts). With --ready PATH it opens PATH for writing and closes it once
it listens (a FIFO a script waits on with `cat PATH`).

usage: firewall-prompt.py FOLDER [--answer allow|block] [--ready PATH]
"""
import os
import sys


def main():
    folder = sys.argv[1]
    options = dict(zip(sys.argv[2::2], sys.argv[3::2]))
    fixed = options.get("--answer")
    requests = os.path.join(folder, "requests")
    if not os.path.exists(requests):
        os.mkfifo(requests, 0o600)
    tty = None if fixed else open("/dev/tty", "r+", buffering=1)
    with open(os.open(requests, os.O_RDWR), "r", buffering=1) as lines:
        print("firewall-prompt: ready", file=sys.stderr, flush=True)
        if "--ready" in options:
            open(options["--ready"], "w").close()
        for line in lines:
            request_id, question = line.rstrip("\n").split(" ", 1)
            answer = fixed
            while answer is None:
                tty.write(f"firewall: allow {question}? [y/n] ")
                reply = tty.readline().strip().lower()
                answer = {"y": "allow", "n": "block"}.get(reply)
            name = os.path.join(folder, f"{request_id}.{answer}")
            os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o600))
            os.unlink(name)


if __name__ == "__main__":
    main()
