"""The events consumer of events-stall.sh: copies a FIFO to a file as fast as lines come.

It opens the FIFO without waiting for a writer (so palisade's open of the other end does not wait either), writes
FILE.ready, and with "stopped" then stops itself (SIGSTOP) before reading anything, until it gets SIGCONT.
usage: fifo-reader.py FIFO FILE running|stopped
"""
import fcntl
import os
import signal
import sys
import time

fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
open(sys.argv[2] + ".ready", "w").close()
if sys.argv[3] == "stopped":
    os.kill(os.getpid(), signal.SIGSTOP)
got = False
with open(sys.argv[2], "wb") as out:
    while True:
        chunk = os.read(fd, 1 << 16)
        if chunk:
            out.write(chunk)
            got = True
        elif got:
            break
        else:
            time.sleep(0.01)  # no writer yet: a FIFO without one reads as end of file
