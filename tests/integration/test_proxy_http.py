#!/usr/bin/env python3
"""Forwarding through Outpost with curl and raw sockets: methods, bodies, framing,
hop-by-hop headers, Via / X-Forwarded-For, keep-alive, pipelining, Max-Forwards."""
import json
import os
import socket
import time

import harness as h


class ProxyHttp(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.origin = h.TestOrigin(cls.procs)
        cls.nginx = h.Nginx(cls.procs, cls.tmp)
        cls.outpost = h.Outpost(cls.procs, cls.tmp).start()

    def echo(self, *curl_args):
        r = h.curl(*curl_args)
        return json.loads(r.stdout)

    def test_get_through_proxy(self):
        self.nginx.put_file("hello.txt", b"hello world\n")
        r = h.curl("-i", f"http://127.0.0.1:{h.NGINX_PORT}/hello.txt")
        head, body = r.stdout.split(b"\r\n\r\n", 1)
        self.assertEqual(body, b"hello world\n")
        self.assertIn(b"HTTP/1.1 200", head)
        self.assertIn(b"Via: 1.1 outpost-test", head)

    def test_via_off_means_no_via_on_any_path(self):
        # proxy.via = false: no Via towards the origin, none on a miss, a hit, a 304 to a
        # conditional, or a collapsed follower (one writer for every response head).
        d = os.path.join(self.tmp, "novia")
        os.makedirs(d)
        op = h.Outpost(self.procs, d, port=3140,
                       extra_config=f'[proxy]\nlisten = ["127.0.0.1:3140"]\nvia = false\n').start()
        self.origin.script("/script/novia", body="v", etag='"e1"', headers=[["Cache-Control", "max-age=60"]])
        url = self.origin.url("/script/novia")
        miss = h.curl("-si", url, proxy=3140).stdout
        hit = h.curl("-si", url, proxy=3140).stdout
        not_modified = h.curl("-si", "-H", 'If-None-Match: "e1"', url, proxy=3140).stdout
        self.assertIn(b"HIT", hit)
        self.assertEqual(h.status_of(not_modified), 304)
        for out in (miss, hit, not_modified):
            self.assertNotIn(b"\nvia:", out.lower())
        self.assertNotIn("via", self.origin.last_headers("/script/novia"))
        self.assertEqual(op.stop(), 0)

    def test_head(self):
        r = h.curl("-I", self.origin.url("/bytes?n=1234"))
        self.assertIn(b"Content-Length: 1234", r.stdout)
        self.assertEqual(h.status_of(r.stdout), 200)

    def test_post_and_put_bodies(self):
        body = os.urandom(300_000)
        path = os.path.join(self.tmp, "body.bin")
        with open(path, "wb") as f:
            f.write(body)
        for method in ("POST", "PUT", "PATCH"):
            info = self.echo("-X", method, "--data-binary", "@" + path, self.origin.url("/echo"))
            self.assertEqual(info["method"], method)
            self.assertEqual(info["body_length"], len(body))
            self.assertEqual(info["body_sha256"], h.sha256(body))

    def test_chunked_request_body(self):
        body = os.urandom(100_000)
        path = os.path.join(self.tmp, "chunked.bin")
        with open(path, "wb") as f:
            f.write(body)
        info = self.echo("-H", "Transfer-Encoding: chunked", "--data-binary", "@" + path, self.origin.url("/echo"))
        self.assertEqual(info["body_sha256"], h.sha256(body))
        names = [k.lower() for k, _ in info["headers"]]
        self.assertIn("transfer-encoding", names)
        self.assertNotIn("content-length", names)

    def test_delete_and_options(self):
        self.assertEqual(self.echo("-X", "DELETE", self.origin.url("/echo"))["method"], "DELETE")
        self.assertEqual(self.echo("-X", "OPTIONS", self.origin.url("/echo"))["method"], "OPTIONS")

    def test_extension_methods_forwarded_as_sent(self):
        # RFC 9110 §9.1: any method token goes to the origin as sent, with its body (framed by
        # Content-Length or chunked alone), on a kept-alive connection; methods are
        # case-sensitive, so "get" stays "get".
        O = h.ORIGIN_PORT
        for method in ("PROPFIND", "BREW", "get", "M-SEARCH", "X_LONG-Method.v2!"):
            raw = (f"{method} http://127.0.0.1:{O}/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                   ).encode()
            out = h.raw_exchange(raw)
            self.assertEqual(h.status_of(out), 200, out[:200])
            info = json.loads(out.split(b"\r\n\r\n", 1)[1])
            self.assertEqual(info["method"], method)
            self.assertEqual(info["body_length"], 5)
        # A chunked body, and the request line arriving a byte at a time, then a GET behind
        # it on the same connection.
        raw = (f"MKCALENDAR http://127.0.0.1:{O}/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               "3\r\nabc\r\n0\r\n\r\n"
               f"GET http://127.0.0.1:{O}/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", h.PROXY_PORT), timeout=10) as s:
            for i in range(len(raw)):
                s.sendall(raw[i:i + 1])
            out = h.read_until_close(s)
        bodies = [json.loads(part.split(b"\r\n\r\n", 1)[1].split(b"}", 1)[0] + b"}")
                  for part in out.split(b"HTTP/1.1 200")[1:]]
        self.assertEqual([b["method"] for b in bodies], ["MKCALENDAR", "GET"], out[:400])
        self.assertEqual(bodies[0]["body_length"], 3)
        line = []
        for _ in range(50):  # the access log is flushed every second
            line = [l for l in self.outpost.access_lines() if "MKCALENDAR" in l]
            if line:
                break
            time.sleep(0.1)
        self.assertTrue(line and " TCP_MISS/200 " in line[-1], line)

    def test_chunked_response_reframed(self):
        expected = h.direct_get(h.ORIGIN_PORT, "/bytes?n=100000")
        r = h.curl("-i", self.origin.url("/bytes?n=100000&chunked=1"))
        head, body = r.stdout.split(b"\r\n\r\n", 1)
        self.assertIn(b"Transfer-Encoding: chunked", head)
        self.assertEqual(body, expected)

    def test_close_delimited_response_to_http10_and_11(self):
        expected = h.direct_get(h.ORIGIN_PORT, "/bytes?n=50000")
        r = h.curl(self.origin.url("/bytes?n=50000&close=1"))
        self.assertEqual(r.stdout, expected)
        r = h.curl("-0", self.origin.url("/bytes?n=50000&chunked=1"))
        self.assertEqual(r.stdout, expected)

    def test_hop_by_hop_removed_and_via_xff_added(self):
        info = self.echo("-H", "Connection: X-Secret, keep-alive", "-H", "X-Secret: 1", "-H", "Keep-Alive: 5",
                         "-H", "Proxy-Authorization: Basic Zm9vOmJhcg==", "-H", "TE: trailers",
                         "-H", "Upgrade: h2c", "-H", "X-End-To-End: yes", "-H", "Proxy-Connection: keep-alive",
                         self.origin.url("/echo"))
        names = {k.lower(): v for k, v in info["headers"]}
        for gone in ("x-secret", "keep-alive", "proxy-authorization", "te", "upgrade", "proxy-connection"):
            self.assertNotIn(gone, names)
        self.assertEqual(names["x-end-to-end"], "yes")
        self.assertEqual(names["via"], "1.1 outpost-test")
        self.assertEqual(names["x-forwarded-for"], "127.0.0.1")
        self.assertEqual(names["host"], f"127.0.0.1:{h.ORIGIN_PORT}")
        self.assertEqual(info["path"], "/echo")

    def test_max_forwards_zero_answered_by_proxy(self):
        r = h.curl("-i", "-X", "OPTIONS", "-H", "Max-Forwards: 0", self.origin.url("/echo"))
        self.assertEqual(h.status_of(r.stdout), 200)
        self.assertIn(b"Allow:", r.stdout)
        r = h.curl("-i", "-X", "TRACE", "-H", "Max-Forwards: 0", "-H", "X-Probe: 42", "-H", "Cookie: sid=secret",
                   "-H", "Authorization: Basic c2VjcmV0", "-H", "Proxy-Authorization: Basic c2VjcmV0",
                   self.origin.url("/echo"))
        self.assertIn(b"message/http", r.stdout)
        self.assertIn(b"X-Probe: 42", r.stdout)
        self.assertNotIn(b"secret", r.stdout)
        self.assertNotIn(b"c2VjcmV0", r.stdout)
        # Forwarded, the origin never sees them either (it would echo them).
        info = self.echo("-X", "TRACE", "-H", "Cookie: sid=secret", "-H", "Authorization: Basic c2VjcmV0",
                         self.origin.url("/echo"))
        names = {k.lower() for k, _ in info["headers"]}
        self.assertNotIn("cookie", names)
        self.assertNotIn("authorization", names)
        before = self.origin.stats()["requests"].get("/echo", 0)
        info = self.echo("-X", "OPTIONS", "-H", "Max-Forwards: 3", self.origin.url("/echo"))
        self.assertIn(["Max-Forwards", "2"], info["headers"])
        self.assertEqual(self.origin.stats()["requests"].get("/echo", 0), before + 1)

    def test_keep_alive_reuses_origin_connections(self):
        self.nginx.put_file("ka.txt", b"k" * 100)
        before = self.nginx.accepted_connections()
        urls = [f"http://127.0.0.1:{h.NGINX_PORT}/ka.txt"] * 50
        # One curl process: 50 requests over one client connection (keep-alive).
        r = h.curl("-v", *urls)
        self.assertEqual(r.stdout, b"k" * 100 * 50)
        self.assertEqual(r.stderr.count(b"Re-using existing connection"), 49)
        after = self.nginx.accepted_connections()
        # The status request itself is one connection; two workers may open one each.
        self.assertLessEqual(after - before - 1, 2, "origin connections were not reused")

    def test_http10_keep_alive(self):
        req = (b"GET http://127.0.0.1:%d/bytes?n=10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % h.ORIGIN_PORT)
        with socket.create_connection(("127.0.0.1", h.PROXY_PORT), timeout=5) as s:
            for _ in range(3):
                s.sendall(req)
                data = b""
                while not data.endswith(h.direct_get(h.ORIGIN_PORT, "/bytes?n=10")) or b"\r\n\r\n" not in data:
                    chunk = s.recv(4096)
                    self.assertTrue(chunk, "proxy closed an HTTP/1.0 keep-alive connection")
                    data += chunk
                self.assertIn(b"Connection: keep-alive", data)

    def test_pipelined_requests_answered_in_order(self):
        reqs = b""
        for n in (300, 10, 2000, 1):
            reqs += b"GET http://127.0.0.1:%d/slow?delay=%s&n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (
                h.ORIGIN_PORT, b"0.3" if n == 300 else b"0", n)
        reqs += b"GET http://127.0.0.1:%d/bytes?n=5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % h.ORIGIN_PORT
        out = h.raw_exchange(reqs, timeout=10, until_close=True)
        lengths = [int(part.split(b"\r\n")[0]) for part in out.split(b"Content-Length: ")[1:]]
        self.assertEqual(lengths, [300, 10, 2000, 1, 5])
        self.assertEqual(out.count(b"HTTP/1.1 200"), 5)

    def test_health_endpoint_and_404(self):
        r = h.curl("-i", f"http://127.0.0.1:{h.PROXY_PORT}/health", proxy=None)
        self.assertEqual(h.status_of(r.stdout), 200)
        self.assertTrue(r.stdout.endswith(b"ok\n"))
        r = h.curl("-i", f"http://127.0.0.1:{h.PROXY_PORT}/nope", proxy=None)
        self.assertEqual(h.status_of(r.stdout), 404)

    def test_access_log_squid_format(self):
        h.curl(self.origin.url("/bytes?n=777&log=1"))
        deadline = time.time() + 5
        line = None
        while time.time() < deadline and line is None:
            for l in self.outpost.access_lines():
                if "/bytes?n=777&log=1" in l:
                    line = l
            time.sleep(0.1)
        self.assertIsNotNone(line, "request missing from the access log")
        f = line.split()
        self.assertRegex(f[0], r"^\d+\.\d{3}$")
        self.assertTrue(f[1].isdigit())
        self.assertEqual(f[2], "127.0.0.1")
        self.assertEqual(f[3], "TCP_MISS/200")
        self.assertGreater(int(f[4]), 777)  # headers + body
        self.assertEqual(f[5], "GET")
        self.assertEqual(f[6], self.origin.url("/bytes?n=777&log=1"))
        self.assertEqual(f[7], "-")
        self.assertEqual(f[8], "HIER_DIRECT/127.0.0.1")
        self.assertEqual(f[9], "application/octet-stream")


if __name__ == "__main__":
    h.main()
