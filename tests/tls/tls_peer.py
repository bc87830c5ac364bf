"""A TLS client nobody in netloop wrote: Python's ssl module (OpenSSL).

Usage: tls_peer.py MODE PORT CAFILE [ARG]
  echo N       send N deterministic bytes in 64 KiB steps, check the echo
               byte for byte, then close_notify and wait for the server's
  framed       send one length-prefixed JSON echo request, await the answer
  upload N     upload N bytes as py.bin, check the server's sha256
  halfclose    send a line, then close_notify (our write side only), and
               read what the server sends after it until its close_notify
Prints one line starting with OK, or exits non-zero with the reason.
"""
import hashlib
import json
import socket
import ssl
import struct
import sys

mode, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
arg = sys.argv[4] if len(sys.argv) > 4 else None
ctx = ssl.create_default_context(cafile=ca)


def connect():
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def pattern(n):
    out = bytearray()
    x = 1
    while len(out) < n:
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        out += x.to_bytes(8, "little")
    return bytes(out[:n])


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        d = s.recv(n - len(out))
        if not d:
            sys.exit("EOF after %d of %d bytes" % (len(out), n))
        out += d
    return out


if mode == "echo":
    n = int(arg)
    data = pattern(n)
    s = connect()
    back = bytearray()
    for i in range(0, n, 65536):
        chunk = data[i:i + 65536]
        s.sendall(chunk)
        back += recv_exact(s, len(chunk))
    if bytes(back) != data:
        sys.exit("echo differs")
    # close_notify; unwrap() returns once the server's close_notify is in.
    s.unwrap()
    print("OK echo %d %s" % (n, hashlib.sha256(back).hexdigest()))
elif mode == "framed":
    s = connect()
    body = json.dumps({"type": "echo", "data": "from python"}).encode()
    s.sendall(struct.pack(">I", len(body)) + body)
    while True:
        (length,) = struct.unpack(">I", recv_exact(s, 4))
        msg = json.loads(recv_exact(s, length))
        if msg.get("type") == "echo_response":
            break
    print("OK framed %s" % msg["data"])
    s.close()
elif mode == "upload":
    n = int(arg)
    data = pattern(n)
    s = connect()
    s.sendall(b"Filename: py.bin\r\nFilesize: %d\r\n\r\n" % n + data)
    f = s.makefile("rb")
    while True:
        line = f.readline()
        if not line:
            sys.exit("EOF before completed")
        msg = json.loads(line)
        if msg.get("status") == "completed":
            break
        if msg.get("status") == "error":
            sys.exit("server error: %s" % msg)
    want = hashlib.sha256(data).hexdigest()
    if msg.get("sha256") != want:
        sys.exit("sha256 %s != %s" % (msg.get("sha256"), want))
    print("OK upload %d %s" % (n, want))
elif mode == "halfclose":
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)

    def flush():
        d = out.read()
        if d:
            raw.sendall(d)

    def fill():
        d = raw.recv(65536)
        if not d:
            sys.exit("TCP FIN without close_notify")
        inc.write(d)

    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            flush()
            fill()
    flush()
    obj.write(b"hello\n")
    try:
        obj.unwrap()  # our close_notify: the write side only
    except ssl.SSLWantReadError:
        pass
    flush()
    got = b""
    while True:
        try:
            d = obj.read(65536)
            if not d:
                break
            got += d
        except ssl.SSLWantReadError:
            fill()
        except ssl.SSLZeroReturnError:
            break
    sys.stdout.write("OK halfclose " + json.dumps(got.decode()) + "\n")
else:
    sys.exit("unknown mode " + mode)
