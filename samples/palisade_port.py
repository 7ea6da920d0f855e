"""A client of a driver's communication port (docs/ports.md), standard library only: connect, then exchange messages.

Used by the sample services (scan-service.py, firewall-prompt.py), which import it from their own folder.
"""
import socket
import struct
import sys

HEADER = struct.Struct("<BBHIQ")  # type, flags, reserved, status, id
HELLO, CONNECT, CONNECTED, MESSAGE = 1, 2, 3, 4


def connect(path, who):
    """Connects to the port socket PATH and completes the handshake; exits with a message naming WHO if refused."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(path)
    if sock.recv(65600)[0] != HELLO:
        sys.exit(who + ": the port did not greet")
    sock.send(HEADER.pack(CONNECT, 0, 0, 0, 0) + struct.pack("<II", 0, 0))
    kind, _, _, status, _ = HEADER.unpack_from(sock.recv(65600))
    if kind != CONNECTED or status >> 30 in (2, 3):
        sys.exit(who + ": refused, status 0x%08X" % status)
    return sock


def messages(sock):
    """The text of each message the driver sends, until the port closes (the driver unloaded, the run ended)."""
    while True:
        record = sock.recv(65600)
        if len(record) < HEADER.size:
            return
        if record[0] == MESSAGE:
            yield record[HEADER.size:].decode()


def send(sock, text):
    """Sends one message to the driver."""
    sock.send(HEADER.pack(MESSAGE, 0, 0, 0, 0) + text.encode())
