#!/usr/bin/env python3
"""Every error status provoked for real: malformed requests over a raw socket (no request
smuggling), dead / slow / broken origins, access rules. After each error the proxy keeps
serving other clients."""
import socket
import time

import harness as h

O = h.ORIGIN_PORT


def req(line_and_headers):
    return line_and_headers.replace(b"\n", b"\r\n")


class ProxyErrors(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.origin = h.TestOrigin(cls.procs)
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config="[origin]\nread_timeout = 1\nconnect_timeout = 2\n").start()

    def assert_still_serving(self):
        r = h.curl(self.origin.url("/bytes?n=3"))
        self.assertEqual(r.stdout, b"\x00\x01\x02")

    def assert_status(self, raw, status):
        out = h.raw_exchange(raw)
        self.assertEqual(h.status_of(out), status, out[:300])
        self.assert_still_serving()
        return out

    # ---- 400: malformed requests (strict parsing; smuggling must be impossible)
    def test_400_conflicting_content_length_and_transfer_encoding(self):
        before = self.origin.stats()["requests"].get("/echo", 0)
        out = self.assert_status(req(b"POST http://127.0.0.1:%d/echo HTTP/1.1\nHost: x\nContent-Length: 4\n"
                                     b"Transfer-Encoding: chunked\n\n0\n\nGET /smuggled HTTP/1.1\nHost: x\n\n" % O), 400)
        self.assertIn(b"Connection: close", out)
        self.assertEqual(self.origin.stats()["requests"].get("/echo", 0), before, "malformed request was forwarded")
        self.assertNotIn("/smuggled", self.origin.stats()["requests"])

    def test_400_duplicate_content_length(self):
        self.assert_status(req(b"POST http://127.0.0.1:%d/echo HTTP/1.1\nHost: x\nContent-Length: 4\n"
                               b"Content-Length: 5\n\nabcde" % O), 400)

    def test_400_bad_chunk_size(self):
        self.assert_status(req(b"POST http://127.0.0.1:%d/echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n"
                               b"zz\nabc\n0\n\n" % O), 400)

    def test_400_transfer_encoding_not_ending_in_chunked(self):
        self.assert_status(req(b"POST http://127.0.0.1:%d/echo HTTP/1.1\nHost: x\nTransfer-Encoding: gzip\n\nabc"
                               % O), 400)

    def test_400_obs_fold(self):
        self.assert_status(req(b"GET http://127.0.0.1:%d/echo HTTP/1.1\nHost: x\nX-A: one\n two\n\n" % O), 400)

    def test_400_invalid_characters(self):
        self.assert_status(req(b"GET http://127.0.0.1:%d/echo HTTP/1.1\nHost: x\nBad Header: v\n\n" % O), 400)
        self.assert_status(b"GET http://127.0.0.1:%d/echo HTTP/1.1\r\nX: a\x00b\r\n\r\n" % O, 400)
        self.assert_status(b"GET http://127.0.0.1:%d/echo HTTP/1.1\nHost: x\n\n" % O, 400)  # bare LF

    def test_400_bad_target(self):
        self.assert_status(req(b"GET http://user@127.0.0.1:%d/ HTTP/1.1\nHost: x\n\n" % O), 400)
        self.assert_status(req(b"GET http:///nohost HTTP/1.1\nHost: x\n\n"), 400)
        self.assert_status(b"CONNECT nohostport HTTP/1.1\r\nHost: x\r\n\r\n", 400)

    def test_501_unsupported_scheme(self):
        self.assert_status(req(b"GET gopher://127.0.0.1/ HTTP/1.1\nHost: x\n\n"), 501)

    def test_400_method_that_is_not_a_token(self):
        # Any token is a method (RFC 9110 §9.1); anything else is a malformed request line,
        # never forwarded, and the proxy goes on serving.
        before = self.origin.stats()["requests"].get("/echo", 0)
        for method in (b"BR(EW", b"BR\x7fEW", b"BR\xc3\xa9W", b"BREW\t"):
            out = self.assert_status(b"%s http://127.0.0.1:%d/echo HTTP/1.1\r\nHost: x\r\n\r\n" % (method, O), 400)
            self.assertIn(b"Connection: close", out)
        self.assertEqual(self.origin.stats()["requests"].get("/echo", 0), before)

    # ---- 414 / 431: limits (default 64 KiB)
    def test_414_target_too_long(self):
        long_path = b"/" + b"a" * 70000
        self.assert_status(req(b"GET http://127.0.0.1:%d%s HTTP/1.1\nHost: x\n\n" % (O, long_path)), 414)

    def test_431_headers_too_large(self):
        headers = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"v" * 1000) for i in range(70))
        self.assert_status(b"GET http://127.0.0.1:%d/echo HTTP/1.1\r\nHost: x\r\n%s\r\n" % (O, headers), 431)

    # ---- 505
    def test_505_unsupported_version(self):
        self.assert_status(req(b"GET http://127.0.0.1:%d/echo HTTP/2.0\nHost: x\n\n" % O), 505)

    # ---- 502 / 504: origin trouble
    def test_502_dead_origin_port(self):
        r = h.curl("-i", "http://127.0.0.1:9/", check=False)
        self.assertEqual(h.status_of(r.stdout), 502)
        self.assertIn(b"text/html", r.stdout)
        self.assert_still_serving()

    def test_502_invalid_response(self):
        r = h.curl("-i", self.origin.url("/garbage"), check=False)
        self.assertEqual(h.status_of(r.stdout), 502)
        r = h.curl("-i", self.origin.url("/drop"), check=False)
        self.assertEqual(h.status_of(r.stdout), 502)
        self.assert_still_serving()

    def test_504_slow_origin(self):
        t0 = time.time()
        r = h.curl("-i", self.origin.url("/slow?delay=4"), check=False)
        self.assertEqual(h.status_of(r.stdout), 504)
        self.assertLess(time.time() - t0, 3.5)
        self.assert_still_serving()

    def test_origin_stalls_mid_body_connection_is_cut(self):
        r = h.curl(self.origin.url("/stall?delay=4"), check=False)
        self.assertNotEqual(r.returncode, 0)  # curl sees a short body, never a fake success
        self.assert_still_serving()

    # ---- 403: access rules
    def test_403_destination_host_rules(self):
        r = h.curl("-i", "http://update.googleapis.com/service", check=False)
        self.assertEqual(h.status_of(r.stdout), 403)
        r = h.curl("-i", "http://10.1.2.3/", check=False)
        self.assertEqual(h.status_of(r.stdout), 403)
        # Only loopback exists here: had the name been looked up first, the lookup would have
        # failed (502 "Cannot resolve"). A 403 means the name rule decided before any lookup.
        self.assertNotIn("Cannot resolve update.googleapis.com", self.outpost.log_text())

    def test_403_loop_to_own_port(self):
        r = h.curl("-i", f"http://127.0.0.1:{h.PROXY_PORT}/health", check=False)
        self.assertEqual(h.status_of(r.stdout), 403)
        r = h.curl("-i", "-H", "Via: 1.1 outpost-test", self.origin.url("/echo"), check=False)
        self.assertEqual(h.status_of(r.stdout), 403)

    def test_403_connect_port_not_allowed(self):
        out = h.raw_exchange(b"CONNECT 127.0.0.1:25 HTTP/1.1\r\nHost: 127.0.0.1:25\r\n\r\n")
        self.assertEqual(h.status_of(out), 403)
        self.assert_still_serving()

    def test_access_log_records_denials(self):
        h.curl("-i", "http://denied.example/x", check=False)
        deadline = time.time() + 5
        while time.time() < deadline:
            if any("TCP_DENIED/403" in l and "http://denied.example/x" in l for l in self.outpost.access_lines()):
                return
            time.sleep(0.1)
        self.fail("denial missing from the access log")

    def test_error_with_body_keeps_connection_usable(self):
        # A denied POST with a body: the proxy answers 403, reads and drops the body, and
        # the same connection then serves the next request.
        body = b"x" * 5000
        with socket.create_connection(("127.0.0.1", h.PROXY_PORT), timeout=5) as s:
            s.sendall(b"POST http://denied.example/ HTTP/1.1\r\nHost: denied.example\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(body), body))
            s.sendall(b"GET http://127.0.0.1:%d/bytes?n=4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % O)
            out = b""
            while True:
                c = s.recv(65536)
                if not c:
                    break
                out += c
        self.assertEqual(h.status_of(out), 403)
        self.assertIn(b"HTTP/1.1 200", out)
        self.assertTrue(out.endswith(b"\x00\x01\x02\x03"))


class ClientNotAllowed(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.origin = h.TestOrigin(cls.procs)
        cls.outpost = h.Outpost(cls.procs, cls.tmp, port=3129, acl='[acl]\nallow_clients = ["10.0.0.0/8"]\n').start()

    def test_403_for_client_outside_allowed_networks(self):
        r = h.curl("-i", self.origin.url("/echo"), proxy=3129, check=False)
        self.assertEqual(h.status_of(r.stdout), 403)
        self.assertEqual(self.origin.stats()["requests"].get("/echo", 0), 0)


if __name__ == "__main__":
    h.main()
