#!/usr/bin/env python3
"""The prompt program of the sample firewall's "ask" rules (palisade run --param firewall.prompt=NAME).

It runs inside or outside `palisade run` and talks to the driver through the driver's communication port NAME, the
socket $PALISADE_HOME/ports/NAME (docs/ports.md, standard library only). The driver sends one message per connection it
holds, "ID connect PROGRAM PROTOCOL ADDRESS PORT user UID"; the program answers with the message "ID allow" or
"ID block", which completes the held connection. Each question is asked on the terminal (/dev/tty); with
--answer allow|block every question gets that answer without asking (for scripts). With --ready PATH it opens PATH for
writing and closes it once it is connected (a FIFO a script waits on with `cat PATH`).

usage: firewall-prompt.py SOCKET [--answer allow|block] [--ready PATH]
"""
import sys

sys.dont_write_bytecode = True  # the shared module sits beside the samples, in the repository: leave no cache there
from palisade_port import connect, messages, send  # noqa: E402


def main():
    sock = connect(sys.argv[1], "firewall-prompt")
    options = dict(zip(sys.argv[2::2], sys.argv[3::2]))
    fixed = options.get("--answer")
    tty = None if fixed else open("/dev/tty", "r+", buffering=1)
    print("firewall-prompt: ready", file=sys.stderr, flush=True)
    if "--ready" in options:
        open(options["--ready"], "w").close()
    for message in messages(sock):
        request_id, question = message.split(" ", 1)
        answer = fixed
        while answer is None:
            tty.write(f"firewall: allow {question}? [y/n] ")
            reply = tty.readline().strip().lower()
            answer = {"y": "allow", "n": "block"}.get(reply)
        send(sock, request_id + " " + answer)


if __name__ == "__main__":
    main()
