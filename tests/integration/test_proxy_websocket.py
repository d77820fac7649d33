#!/usr/bin/env python3
"""WebSocket through Outpost (RFC 6455 over RFC 9110 §7.8 Upgrade): an absolute-form GET
with "Upgrade: websocket" goes to the origin as an upgrade; the origin's 101 turns the
exchange into a tunnel; a refused upgrade is an ordinary response after which the
connection closes. The origin is the `websockets` library (Debian's python3-websockets),
the client a raw socket speaking the framing itself; hostile origins are scripted."""
import base64
import hashlib
import os
import socket
import struct
import time

import harness as h
from hostile_origin import CLOSE, HostileOrigin

WS_PORT = 8091
HOSTILE_PORT = 8092
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def handshake(path, port=WS_PORT, extra=b"", upgrade=b"websocket", timeout=10):
    """Opens a client connection through the proxy and sends the opening handshake; returns
    (socket, status, head bytes, bytes read after the head, key)."""
    key = base64.b64encode(os.urandom(16))
    s = socket.create_connection(("127.0.0.1", h.PROXY_PORT), timeout=timeout)
    s.sendall(b"GET http://127.0.0.1:%d%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: %s\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
              % (port, path.encode(), port, upgrade, key, extra))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return s, h.status_of(head), head, rest, key


def accept_of(key):
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def frame(payload, opcode=1):
    """A masked client frame (RFC 6455 §5.2)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class FrameReader:
    def __init__(self, sock, buffered=b""):
        self.s, self.buf = sock, buffered

    def need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read(self):
        """One unmasked server frame: (opcode, payload)."""
        b0, b1 = self.need(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.need(8))[0]
        assert not b1 & 0x80, "server frames are not masked"
        return b0 & 0x0F, self.need(n)


class ProxyWebSocket(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.origin = h.TestOrigin(cls.procs)
        ws = cls.procs.start(["/usr/bin/python3", os.path.join(h.HERE, "ws_origin.py"), str(WS_PORT)])
        h.wait_port(WS_PORT, proc=ws)
        cls.hostile = HostileOrigin(HOSTILE_PORT)
        cls.outpost = h.Outpost(cls.procs, cls.tmp).start()

    def log_line(self, part):
        for _ in range(50):  # the access log is flushed every second
            lines = [l for l in self.outpost.access_lines() if part in l]
            if lines:
                return lines[-1]
            time.sleep(0.1)
        return ""

    def test_websocket_messages_both_ways_through_the_tunnel(self):
        s, status, head, rest, key = handshake("/echo")
        with s:
            self.assertEqual(status, 101, head)
            fields = head.lower()
            self.assertIn(b"\r\nupgrade: websocket", fields)
            self.assertIn(b"\r\nconnection: upgrade", fields)
            self.assertIn(b"sec-websocket-accept: " + accept_of(key).lower(), fields)
            self.assertNotIn(b"content-length", fields)
            r = FrameReader(s, rest)
            big = os.urandom(70000)  # 64-bit length, many reads each way
            for payload, op in ((b"one", 1), (b"", 1), (big, 2), (b"x" * 300, 1)):
                s.sendall(frame(payload, op))
                self.assertEqual(r.read(), (op, payload))
            s.sendall(frame(struct.pack("!H", 1000), 8))  # close
            op, payload = r.read()
            self.assertEqual(op, 8)
            self.assertEqual(s.recv(10), b"")  # the origin closed: so does the tunnel
        line = self.log_line(f"127.0.0.1:{WS_PORT}/echo")
        self.assertIn(" TCP_MISS/101 ", line)

    def test_origin_speaks_first_after_the_101(self):
        s, status, head, rest, _ = handshake("/hello")
        with s:
            self.assertEqual(status, 101, head)
            r = FrameReader(s, rest)
            self.assertEqual(r.read(), (1, b"hello"))
            s.sendall(frame(b"ping?"))
            self.assertEqual(r.read(), (1, b"ping?"))

    def test_origin_closing_ends_the_tunnel(self):
        s, status, head, rest, _ = handshake("/bye")
        with s:
            self.assertEqual(status, 101, head)
            s.sendall(frame(b"first"))
            r = FrameReader(s, rest)
            self.assertEqual(r.read(), (8, struct.pack("!H", 1000) + b"bye"))
            s.sendall(frame(struct.pack("!H", 1000), 8))  # the close handshake's answer
            with self.assertRaises(EOFError):
                r.read()

    def test_refused_upgrade_is_an_ordinary_response_then_close(self):
        s, status, head, rest, _ = handshake("/refuse")
        with s:
            self.assertEqual(status, 403, head)
            self.assertIn(b"X-Refused: yes", head)
            self.assertIn(b"Connection: close", head)
            data = rest
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            self.assertEqual(data, b"no websocket here\n")
        self.assertIn(" TCP_MISS/403 ", self.log_line(f"127.0.0.1:{WS_PORT}/refuse"))

    def test_other_upgrades_go_as_plain_requests(self):
        # Only websocket is asked of the origin; h2c is hop-by-hop and dropped, the answer is
        # the origin's plain 200, and the connection closes after it.
        s, status, head, rest, _ = handshake("/echo", port=h.ORIGIN_PORT, upgrade=b"h2c")
        with s:
            self.assertEqual(status, 200, head)
            self.assertIn(b"Connection: close", head)
        got = self.origin.last_headers("/echo")
        self.assertNotIn("upgrade", got)

    def test_origin_not_speaking_websocket_answers_plainly(self):
        # nginx-like plain origin: the upgrade is ignored, a 200 comes back, the client is told
        # to close.
        s, status, head, rest, _ = handshake("/bytes?n=5", port=h.ORIGIN_PORT)
        with s:
            self.assertEqual(status, 200, head)
            self.assertIn(b"Connection: close", head)
        got = self.origin.last_headers("/bytes")
        self.assertEqual(got.get("upgrade"), "websocket")  # asked as an upgrade
        self.assertEqual(got.get("connection"), "Upgrade")

    # ---- hostile origins
    def test_hostile_101_without_upgrade_fields_is_502(self):
        self.hostile.route("/no-upgrade", b"HTTP/1.1 101 Switching Protocols\r\n\r\nxyz", 2, CLOSE)
        s, status, head, _, _ = handshake("/no-upgrade", port=HOSTILE_PORT)
        s.close()
        self.assertEqual(status, 502, head)

    def test_hostile_101_with_bytes_after_it_in_the_same_write(self):
        self.hostile.route("/eager", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                     b"Connection: Upgrade\r\n\r\n\x81\x05early", 0.5, b"\x81\x04late", 0.5, CLOSE)
        s, status, head, rest, _ = handshake("/eager", port=HOSTILE_PORT)
        with s:
            self.assertEqual(status, 101, head)
            r = FrameReader(s, rest)
            self.assertEqual(r.read(), (1, b"early"))
            self.assertEqual(r.read(), (1, b"late"))
            with self.assertRaises(EOFError):
                r.read()

    def test_hostile_origin_closing_at_the_101(self):
        self.hostile.route("/gone", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                    b"Connection: Upgrade\r\n\r\n", CLOSE)
        s, status, head, rest, _ = handshake("/gone", port=HOSTILE_PORT)
        with s:
            self.assertEqual(status, 101, head)
            self.assertEqual(rest + s.recv(100), b"")

    def test_hostile_101_to_a_plain_request_is_502(self):
        self.hostile.route("/sneaky", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                      b"Connection: Upgrade\r\n\r\n", 2, CLOSE)
        out = h.raw_exchange(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.hostile.url("/sneaky").encode())
        self.assertEqual(h.status_of(out), 502, out[:200])

    def test_proxy_still_serves_after_all_this(self):
        r = h.curl(self.origin.url("/bytes?n=3"))
        self.assertEqual(r.stdout, b"\x00\x01\x02")


if __name__ == "__main__":
    h.main()
