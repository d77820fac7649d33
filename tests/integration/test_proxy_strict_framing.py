#!/usr/bin/env python3
"""Framing that llhttp 8.1 lets through and Outpost's parser closes (issue 10), end to end:
a request with it gets a 400 and nothing of it (or of what it would smuggle) reaches the
origin; a response with it from a hostile origin gets the client a 502. Valid quoted chunk
extensions pass in both directions with the body intact."""
import hashlib
import socket
import threading

import harness as h

O = h.ORIGIN_PORT
RAW = 8092  # the raw origin below


class RawOrigin:
    """Answers each request with the bytes routed for its path, then closes."""

    def __init__(self, port):
        self.routes = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            c, _ = self.sock.accept()
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        with c:
            data = b""
            while b"\r\n\r\n" not in data:
                more = c.recv(65536)
                if not more:
                    return
                data += more
            path = data.split(b" ", 2)[1].decode()
            c.sendall(self.routes.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))


class StrictFraming(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.origin = h.TestOrigin(cls.procs)
        cls.raw = RawOrigin(RAW)
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config="[origin]\nread_timeout = 2\n").start()

    def request(self, head_lines, body=b""):
        return head_lines.replace(b"\n", b"\r\n") + body

    def assert_rejected(self, raw, path):
        before = self.origin.count(path)
        out = h.raw_exchange(raw, until_close=True)
        self.assertEqual(h.status_of(out), 400, out[:300])
        self.assertEqual(self.origin.count(path), before, "a rejected request reached the origin")
        self.assertEqual(self.origin.count("/smuggled"), 0)

    # ---- requests
    def test_unknown_transfer_coding(self):
        for te in (b"xchunked", b"gzip, xchunked, chunked", b"chunked, chunked", b"chunked;a=b", b"br, chunked"):
            self.assert_rejected(self.request(b"POST http://127.0.0.1:%d/echo HTTP/1.1\nHost: x\n"
                                              b"Transfer-Encoding: %s\n\n" % (O, te), b"0\r\n\r\n"), "/echo")

    def test_head_ending_in_cr_anything(self):
        self.assert_rejected(b"GET http://127.0.0.1:%d/echo HTTP/1.1\r\nHost: x\r\n\rX"
                             b"GET http://127.0.0.1:%d/smuggled HTTP/1.1\r\nHost: x\r\n\r\n" % (O, O), "/echo")

    def test_transfer_encoding_on_obs_fold(self):
        self.assert_rejected(self.request(b"POST http://127.0.0.1:%d/echo HTTP/1.1\nHost: x\n"
                                          b"Transfer-Encoding:\n chunked\n\n" % O, b"0\r\n\r\n"), "/echo")

    def test_empty_header_name(self):
        self.assert_rejected(self.request(b"GET http://127.0.0.1:%d/echo HTTP/1.1\nHost: x\n: v\n\n" % O), "/echo")

    def test_chunk_data_without_crlf_smuggles_nothing(self):
        raw = self.request(b"POST http://127.0.0.1:%d/echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n" % O,
                           b"3\r\nabcXY0\r\n\r\nGET http://127.0.0.1:%d/smuggled HTTP/1.1\r\nHost: x\r\n\r\n" % O)
        out = h.raw_exchange(raw, until_close=True)
        self.assertNotIn(b"200 OK", out[:20])
        self.assertEqual(self.origin.count("/smuggled"), 0)

    def test_unbounded_chunk_extension(self):
        raw = self.request(b"POST http://127.0.0.1:%d/echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n" % O,
                           b"1;" + b"a" * 100000 + b"\r\nx\r\n0\r\n\r\n")
        out = h.raw_exchange(raw, until_close=True)
        self.assertNotIn(b"200 OK", out[:20])

    def test_quoted_chunk_extensions_pass(self):
        body = b'3 ; a = "b\\"c" ;d\r\nabc\r\n2;e="\\\\"\r\nde\r\n0\r\n\r\n'
        out = h.raw_exchange(self.request(b"POST http://127.0.0.1:%d/echo HTTP/1.1\nHost: x\n"
                                          b"Transfer-Encoding: chunked\nConnection: close\n\n" % O, body),
                             until_close=True)
        self.assertEqual(h.status_of(out), 200, out[:300])
        self.assertIn(hashlib.sha256(b"abcde").hexdigest().encode(), out)

    # ---- responses from a hostile origin
    def assert_502(self, path, response):
        self.raw.routes[path] = response
        out = h.raw_exchange(b"GET http://127.0.0.1:%d%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                             % (RAW, path.encode()), until_close=True)
        self.assertEqual(h.status_of(out), 502, out[:300])

    def test_hostile_responses_are_502(self):
        te = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        self.assert_502("/cr-x", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\rXok")
        self.assert_502("/status-cr-x", b"HTTP/1.1 200 OK\rXContent-Length: 2\r\n\r\nok")
        self.assert_502("/xchunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
        self.assert_502("/fold", b"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
        self.assert_502("/empty-name", b"HTTP/1.1 200 OK\r\n: v\r\nContent-Length: 2\r\n\r\nok")
        # Chunk errors come after the head went out: the client sees a cut-off response
        # (no 0-size chunk), never a complete one.
        for path, body in (("/data-xy", b"2\r\nokXY0\r\n\r\n"), ("/ext", b"2;" + b"a" * 100000 + b"\r\nok\r\n0\r\n\r\n")):
            self.raw.routes[path] = te + body
            out = h.raw_exchange(b"GET http://127.0.0.1:%d%s HTTP/1.1\r\nHost: x\r\n\r\n" % (RAW, path.encode()),
                                 until_close=True)
            self.assertFalse(out.endswith(b"0\r\n\r\n"), out[-200:])

    def test_quoted_chunk_extensions_in_a_response_pass(self):
        self.raw.routes["/quoted"] = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                      b'3 ; a = "b\\"c" ;d\r\nabc\r\n2;e="\\\\"\r\nde\r\n0\r\nX-T: 1\r\n\r\n')
        out = h.raw_exchange(b"GET http://127.0.0.1:%d/quoted HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % RAW,
                             until_close=True)
        self.assertEqual(h.status_of(out), 200, out[:300])
        self.assertIn(b"\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", out)


if __name__ == "__main__":
    h.main()
