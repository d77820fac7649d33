#!/usr/bin/env python3
"""A hostile origin must not get its bytes served under other URLs (issue 10, items 1-2).

Each test scripts hostile_origin.HostileOrigin to send a response that has no body (204,
304, 1xx, a response to HEAD) followed by bytes that form a complete, cacheable response,
or an interim response before a slow final one, and then asks the proxy for another URL
of the same origin (so the pooled connection would be reused). The other URL must get its
own, genuine answer, and the cache must hold the genuine answer too."""
import threading
import time

import harness as h
from hostile_origin import CLOSE, HostileOrigin, ok

PORT = 8090
FORGED = ok("FORGED", b"Cache-Control: max-age=3600\r\n")


class HostileOriginFraming(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.origin = HostileOrigin(PORT)
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config=(
            # One worker: one origin pool, so the next request is sure to be offered the
            # connection the hostile response came on.
            '[server]\nworkers = 1\nname = "outpost-test"\n[origin]\nread_timeout = 3\n')).start()

    def get(self, path, *args):
        r = h.curl("-i", *args, self.origin.url(path), check=False)
        return r.stdout

    def assert_genuine(self, path):
        """The proxy's answer for `path` (and its cached copy) is the origin's own."""
        for _ in range(2):  # the second one is normally a cache hit
            out = self.get(path)
            self.assertEqual(h.status_of(out), 200, out[:300])
            self.assertTrue(out.endswith(f"genuine {path}".encode()), out[-200:])
            self.assertNotIn(b"FORGED", out)

    def keep_alive_pair(self, first, second, method="GET"):
        """`first` then `second` on one client connection; returns the second response. The
        first response is read the way a client must read it: no body after a 204, 304, 1xx
        or a response to HEAD."""
        import socket
        with socket.create_connection(("127.0.0.1", h.PROXY_PORT), timeout=5) as s:
            s.sendall(f"{method} {self.origin.url(first)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(65536)
            head, buf = buf.split(b"\r\n\r\n", 1)
            self.assertIn(h.status_of(head), (204, 304, 200), head)
            time.sleep(0.5)  # anything relayed after the head would arrive now
            s.sendall(f"GET {self.origin.url(second)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            try:
                while not h.complete_response(buf):
                    data = s.recv(65536)
                    if not data:
                        break
                    buf += data
            except socket.timeout:
                pass
            return buf

    def attack(self, name, first, *after, method_args=()):
        """`first` then `after` on /name-a, then /name-b must be genuine."""
        a, b = f"/{name}-a", f"/{name}-b"
        self.origin.route(a, first, *after)
        out = self.get(a, *method_args)
        self.assertNotIn(b"FORGED", out)
        time.sleep(0.05)
        self.assert_genuine(b)
        return out

    # ---- bodies on responses that have none (1xx, 204, 304, HEAD)
    def test_204_with_content_length_same_packet(self):
        out = self.attack("204cl", b"HTTP/1.1 204 No Content\r\nContent-Length: %d\r\n\r\n%s" % (len(FORGED), FORGED))
        self.assertEqual(h.status_of(out), 204)

    def test_204_with_content_length_body_arrives_later(self):
        # The forged bytes come after a pause, when the connection would already be pooled.
        out = self.attack("204late", b"HTTP/1.1 204 No Content\r\nContent-Length: %d\r\n\r\n" % len(FORGED), 0.3, FORGED)
        self.assertEqual(h.status_of(out), 204)

    def test_204_with_content_length_is_not_relayed_as_body(self):
        out = self.attack("204hdr", b"HTTP/1.1 204 No Content\r\nContent-Length: 20\r\n\r\n")
        self.assertEqual(h.status_of(out), 204)
        self.assertNotIn(b"content-length: 20", out.lower())

    def test_204_with_content_length_one_client_connection(self):
        # The same client asks for another URL on its keep-alive connection: it must read
        # that URL's answer, not bytes relayed after the 204.
        self.origin.route("/204ka-a", b"HTTP/1.1 204 No Content\r\nContent-Length: %d\r\n\r\n" % len(FORGED),
                          0.1, FORGED)
        out = self.keep_alive_pair("/204ka-a", "/204ka-b")
        self.assertEqual(h.status_of(out), 200, out[:300])
        self.assertTrue(out.endswith(b"genuine /204ka-b"), out[-200:])

    def test_304_with_body_one_client_connection(self):
        self.origin.route("/304ka-a", b"HTTP/1.1 304 Not Modified\r\nContent-Length: %d\r\n\r\n%s" %
                          (len(FORGED), FORGED))
        out = self.keep_alive_pair("/304ka-a", "/304ka-b")
        self.assertTrue(out.endswith(b"genuine /304ka-b"), out[-200:])

    def test_head_with_body_one_client_connection(self):
        self.origin.route("/headka-a", b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(FORGED), FORGED))
        out = self.keep_alive_pair("/headka-a", "/headka-b", method="HEAD")
        self.assertTrue(out.endswith(b"genuine /headka-b"), out[-200:])

    def test_204_chunked(self):
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(FORGED), FORGED)
        out = self.attack("204te", b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", 0.3, chunked)
        self.assertEqual(h.status_of(out), 204)

    def test_304_with_content_length(self):
        # A 304 to an unconditional request, with a Content-Length and a forged body later.
        out = self.attack("304cl", b"HTTP/1.1 304 Not Modified\r\nContent-Length: %d\r\n\r\n" % len(FORGED), 0.3, FORGED)
        self.assertEqual(h.status_of(out), 304)

    def test_head_response_with_body(self):
        out = self.attack("head", b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(FORGED), FORGED),
                          method_args=("-I",))
        self.assertEqual(h.status_of(out), 200)

    def test_1xx_with_content_length(self):
        # A 1xx has no body whatever its headers say: what follows is the final response.
        out = self.attack("1xxcl", b"HTTP/1.1 199 Odd\r\nContent-Length: 10\r\n\r\n",
                          ok("final", b"Cache-Control: no-store\r\n"), 0.2, FORGED)
        self.assertIn(b"200 OK", out)
        self.assertTrue(out.endswith(b"final"), out[-100:])

    def test_100_continue_followed_by_two_responses(self):
        # 100 Continue, a final response, then a second "response" nobody asked for.
        out = self.attack("100", b"HTTP/1.1 100 Continue\r\n\r\n" + ok("final") + FORGED)
        self.assertIn(b"final", out)

    # ---- transfer codings other than chunked are kept, never cached reduced
    def test_gzip_chunked_response_is_relayed_coded_and_not_stored(self):
        import gzip
        coded = gzip.compress(b"coded body")
        resp = (b"HTTP/1.1 200 OK\r\nCache-Control: max-age=3600\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                b"%x\r\n%s\r\n0\r\n\r\n" % (len(coded), coded))
        self.origin.route("/tegzip", resp)
        for _ in range(2):
            out = h.raw_exchange(f"GET {self.origin.url('/tegzip')} HTTP/1.1\r\nHost: x\r\n"
                                 "Connection: close\r\n\r\n".encode(), until_close=True)
            head, _, body = out.partition(b"\r\n\r\n")
            self.assertIn(b"Transfer-Encoding: gzip, chunked", head)
            size, _, rest = body.partition(b"\r\n")
            self.assertEqual(rest[:int(size, 16)], coded)
        self.assertEqual(self.origin.count("/tegzip"), 2)  # not served from the cache
        # An HTTP/1.0 client cannot be told about the coding: an error, not a corrupt body.
        out = h.raw_exchange(f"GET {self.origin.url('/tegzip')} HTTP/1.0\r\n\r\n".encode(), until_close=True)
        self.assertEqual(h.status_of(out), 502, out[:300])

    def test_gzip_chunked_request_is_forwarded_as_sent(self):
        import gzip
        coded = gzip.compress(b"upload")
        req = (f"POST {self.origin.url('/upgzip')} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
               "Connection: close\r\n\r\n").encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(coded), coded)
        out = h.raw_exchange(req, until_close=True)
        self.assertEqual(h.status_of(out), 200, out[:300])
        self.assertIn("Transfer-Encoding: gzip, chunked", self.origin.heads["/upgzip"])

    # ---- status codes outside 100-599
    def test_status_out_of_range_is_502(self):
        for code in (b"000", b"020", b"099", b"600", b"999"):
            with self.subTest(code=code):
                path = f"/status-{code.decode()}"
                self.origin.route(path, b"HTTP/1.1 " + code + b" Odd\r\nContent-Length: 0\r\n\r\n" + FORGED)
                out = self.get(path)
                self.assertEqual(h.status_of(out), 502, out[:300])
                self.assertNotIn(b"FORGED", out)
        self.assert_genuine("/status-after")
        deadline = time.time() + 3  # the log is flushed every second
        while "invalid status code 600" not in self.outpost.log_text() and time.time() < deadline:
            time.sleep(0.1)
        self.assertIn("invalid status code 600", self.outpost.log_text())

    # ---- interim responses never end an exchange
    def test_early_hints_then_slow_final(self):
        path = "/hints"
        self.origin.route(path, b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n", 0.5,
                          ok("final hints", b"Cache-Control: max-age=3600\r\n"))
        results = {}

        def fetch():
            results["hints"] = self.get(path)

        t = threading.Thread(target=fetch)
        t.start()
        time.sleep(0.2)  # while the final response is pending, another request for the origin
        self.assert_genuine("/hints-other")
        t.join()
        self.assertIn(b"103 Early Hints", results["hints"])
        self.assertTrue(results["hints"].endswith(b"final hints"), results["hints"][-100:])

    def test_collapsed_followers_wait_for_the_final_response(self):
        path = "/collapsed"
        self.origin.route(path, b"HTTP/1.1 103 Early Hints\r\n\r\n", 0.5,
                          ok("collapsed final", b"Cache-Control: max-age=3600\r\n"))
        outs = []

        def fetch():
            outs.append(self.get(path))

        threads = [threading.Thread(target=fetch) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        self.assert_genuine("/collapsed-other")
        for t in threads:
            t.join()
        self.assertEqual(len(outs), 4)
        for out in outs:
            self.assertTrue(out.endswith(b"collapsed final"), out[-100:])
        self.assertEqual(self.origin.count(path), 1)

    def test_background_refresh_with_early_hints(self):
        # stale-while-revalidate: the client gets the stale copy at once and the refresh runs
        # without a client. Its origin connection must not go back to the pool at the 103.
        path = "/swr"
        self.origin.route(path, ok("swr v1", b"Cache-Control: max-age=1, stale-while-revalidate=60\r\n"))
        self.assertTrue(self.get(path).endswith(b"swr v1"))
        time.sleep(2.1)
        self.origin.route(path, b"HTTP/1.1 103 Early Hints\r\n\r\n", 0.6,
                          ok("swr v2", b"Cache-Control: max-age=3600\r\n"))
        out = self.get(path)
        self.assertTrue(out.endswith(b"swr v1"), out[-100:])  # stale, refresh started
        time.sleep(0.2)
        self.assert_genuine("/swr-other")
        deadline = time.time() + 5
        while time.time() < deadline and not self.get(path).endswith(b"swr v2"):
            time.sleep(0.2)
        self.assertTrue(self.get(path).endswith(b"swr v2"))

    def test_conditional_miss_origin_cuts_the_body_after_its_head(self):
        # The client's conditional is answered 304 from the origin's 200 head while the body
        # goes only to the store; the origin dies mid-body: the client keeps its 304, nothing
        # is stored, and the next GET is the origin's again.
        head = (b"HTTP/1.1 200 OK\r\nETag: \"cut\"\r\nCache-Control: max-age=3600\r\n"
                b"Content-Length: 100000\r\n\r\n")
        self.origin.route("/cond-cut", head + b"a" * 1000, 0.3, CLOSE)
        out = self.get("/cond-cut", "-H", 'If-None-Match: "cut"')
        self.assertEqual(h.status_of(out), 304, out[:300])
        self.assertNotIn(b"if-none-match", self.origin.heads["/cond-cut"].lower().encode())
        self.origin.route("/cond-cut", ok("whole", b'ETag: "cut"\r\nCache-Control: max-age=3600\r\n'))
        time.sleep(0.6)  # until the origin has cut it (a GET before then follows the writer, and is cut too)
        out = self.get("/cond-cut")
        self.assertTrue(out.endswith(b"whole"), out[-200:])
        self.assertEqual(self.origin.count("/cond-cut"), 2)

    def test_conditional_miss_origin_answers_304_anyway(self):
        # Asked unconditionally, the origin still says 304: relayed as it is, nothing stored.
        self.origin.route("/cond-304", b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n')
        out = self.get("/cond-304", "-H", 'If-None-Match: "x"')
        self.assertEqual(h.status_of(out), 304, out[:300])
        self.assert_genuine("/cond-304-next")

    def test_unexpected_bytes_close_the_connection(self):
        # After a clean 200 the origin sends more bytes: the connection is never reused.
        self.origin.route("/extra-a", ok("extra", b"Cache-Control: no-store\r\n") + b"GARBAGE")
        self.get("/extra-a")
        conn_a = self.origin.connection_of("/extra-a")[-1]
        self.origin.route("/extra-b", ok("genuine /extra-b"), CLOSE)
        self.get("/extra-b")
        self.assertNotEqual(self.origin.connection_of("/extra-b")[-1], conn_a)


if __name__ == "__main__":
    h.main()
