#!/usr/bin/env python3
"""A client of a Palisade communication port, written from docs/ports.md alone with the standard library.

usage: port_client.py SOCKET answer N READY   connect, ask the driver "hello" and print its reply, write "ready" to the
                                              FIFO READY, then answer N messages ("deny" when the message contains
                                              "deny", else "allow") and print each
       port_client.py SOCKET read FILE READY  connect, read FILE, then write "ready" to the FIFO READY
       port_client.py SOCKET connect          connect and print "connected ID"

A refused connect prints "refused 0xSTATUS" and exits 3; a protocol error exits 4.
"""
import socket
import struct
import sys

HEADER = struct.Struct("<BBHIQ")  # type, flags, reserved (0), status, id: 16 bytes, little-endian
HELLO, CONNECT, CONNECTED, MESSAGE, REPLY = 1, 2, 3, 4, 5
REPLY_WANTED = 1
MAX_RECORD = HEADER.size + 65536 + 8


def record(kind, flags, status, ident, payload=b""):
    return HEADER.pack(kind, flags, 0, status, ident) + payload


def receive(sock):
    data = sock.recv(MAX_RECORD + 1)
    if len(data) < HEADER.size:
        return None
    kind, flags, _, status, ident = HEADER.unpack_from(data)
    return kind, flags, status, ident, data[HEADER.size:]


def fail(message):
    print(message, flush=True)
    sys.exit(4)


def connect(path, context=b""):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(path)
    hello = receive(sock)
    if hello is None or hello[0] != HELLO:
        fail("no hello")
    version, flags, _maximum = struct.unpack_from("<HHI", hello[4])
    if version != 1 or flags & 1:
        fail("unsupported hello: version %d flags %d" % (version, flags))
    # Connect: the context (u32 length, bytes), then the signature (u32 length, none here).
    sock.send(record(CONNECT, 0, 0, 0, struct.pack("<I", len(context)) + context + struct.pack("<I", 0)))
    answer = receive(sock)
    if answer is None or answer[0] != CONNECTED:
        fail("no answer to connect")
    status = answer[2]
    if status >> 30 in (2, 3):
        print("refused 0x%08X" % status, flush=True)
        sys.exit(3)
    return sock, answer[3]


def signal_ready(fifo):
    with open(fifo, "w") as f:
        f.write("ready\n")


def answer(sock, count, fifo):
    sock.send(record(MESSAGE, REPLY_WANTED, 0, 7, b"hello"))
    reply = receive(sock)
    if reply is None or reply[0] != REPLY or reply[3] != 7:
        fail("no reply to hello")
    print("driver replied %s status 0x%08X" % (reply[4].decode(), reply[2]), flush=True)
    signal_ready(fifo)
    for _ in range(count):
        message = receive(sock)
        if message is None or message[0] != MESSAGE:
            fail("connection ended")
        _, flags, _, ident, body = message
        verdict = b"deny" if b"deny" in body else b"allow"
        if flags & REPLY_WANTED:
            sock.send(record(REPLY, 0, 0, ident, verdict))
        print("asked %s -> %s" % (body.decode(), verdict.decode()), flush=True)


def main(argv):
    path, mode = argv[1], argv[2]
    if mode == "answer":
        sock, _ = connect(path, b"python")
        answer(sock, int(argv[3]), argv[4])
    elif mode == "read":
        sock, _ = connect(path)
        with open(argv[3], "rb") as f:
            f.read()
        signal_ready(argv[4])
    elif mode == "connect":
        sock, ident = connect(path)
        print("connected %d" % ident, flush=True)
    else:
        fail("unknown mode " + mode)
    sock.close()


if __name__ == "__main__":
    main(sys.argv)
