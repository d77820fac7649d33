#!/usr/bin/env python3
"""https:// request targets: Outpost fetches them from a real nginx over TLS, verified
against a test CA (certificates made here with openssl), caches them by the https URI, keeps
the TLS connection alive and resumes sessions; origins it cannot verify, or that do not speak
TLS at all, get a 502 that names the reason."""
import os
import re
import socket
import threading

import harness as h

GOOD = 8443        # CA-signed: DNS:localhost, IP:127.0.0.1
SELF_SIGNED = 8444
WRONG_NAME = 8445  # CA-signed for wrong.test only
ONE_SHOT = 8446    # CA-signed, one request per connection (resumption)
EXPIRED = 8447     # CA-signed, expired
CLOSER = 8450      # accepts TCP and closes at once
ADMIN = 9090
PLAIN = h.NGINX_PORT  # plain HTTP on a port asked for as https


def start_nginx(procs, workdir, certs):
    """nginx with a plain server on PLAIN and the TLS servers of this test."""
    www = os.path.join(workdir, "www")

    def server(port, name, extra=""):
        return h.nginx_tls_server(port, certs, name, www, extra)
    servers = ("ssl_protocols TLSv1.2 TLSv1.3;\nssl_session_cache shared:tls:1m;\n" + server(GOOD, "good") +
               server(SELF_SIGNED, "self") + server(WRONG_NAME, "wrong") +
               server(ONE_SHOT, "good", "keepalive_requests 1;") + server(EXPIRED, "expired"))
    return h.Nginx(procs, workdir, port=PLAIN, extra_http=servers,
                   access_format="$server_port $connection $ssl_session_reused $request_uri",
                   extra_ports=(GOOD, SELF_SIGNED, WRONG_NAME, ONE_SHOT, EXPIRED))


def closer(port):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    while True:
        c, _ = srv.accept()
        c.close()


def get(url, extra=b""):
    host = url.split("/")[2].encode()
    req = b"GET %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n" % (url.encode(), host, extra)
    return h.raw_exchange(req, until_close=True, timeout=15)


def body_of(resp):
    return resp.split(b"\r\n\r\n", 1)[1]


class HttpsOrigin(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs = os.path.join(cls.tmp, "certs")
        os.makedirs(cls.certs)
        h.make_test_pki(cls.certs)
        cls.nginx = start_nginx(cls.procs, cls.tmp, cls.certs)
        cls.www = cls.nginx.root
        for sub in ("fresh", "nc"):
            os.makedirs(os.path.join(cls.www, sub))
        threading.Thread(target=closer, args=(CLOSER,), daemon=True).start()
        h.wait_port(CLOSER)
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config=f'[origin]\nca_file = "{cls.certs}/ca.pem"\n'
                                                                 f'[admin]\nenabled = true\nlisten = ["127.0.0.1:{ADMIN}"]\n',
                                acl='[acl]\nallow_clients = ["127.0.0.0/8"]\nallow_hosts = ["localhost"]\n'
                                    'allow_networks = ["127.0.0.0/8"]\n').start()

    def put(self, path, data):
        with open(os.path.join(self.www, path), "wb") as f:
            f.write(data)

    def nginx_log(self, port):
        """(connection, reused, uri) of every request nginx served on `port`."""
        with open(os.path.join(self.tmp, "nginx-access.log")) as f:
            lines = [l.split() for l in f if l.startswith(f"{port} ")]
        return [(l[1], l[2], l[3]) for l in lines]

    def test_https_target_is_fetched_verified_and_cached(self):
        data = os.urandom(300_000)
        self.put("fresh/a.bin", data)
        r1 = get(f"https://localhost:{GOOD}/fresh/a.bin")
        self.assertEqual(h.status_of(r1), 200, r1[:300])
        self.assertEqual(h.sha256(body_of(r1)), h.sha256(data))
        r2 = get(f"https://localhost:{GOOD}/fresh/a.bin")
        self.assertEqual(h.status_of(r2), 200)
        self.assertEqual(h.sha256(body_of(r2)), h.sha256(data))
        self.assertRegex(r2, rb"(?i)cache-status: [^\r]*hit")
        served = [e for e in self.nginx_log(GOOD) if e[2] == "/fresh/a.bin"]
        self.assertEqual(len(served), 1, served)  # the second answer came from the cache
        # The access log names the https URI.
        self.assertTrue(any(f"https://localhost:{GOOD}/fresh/a.bin" in l for l in self.outpost.access_lines(2)))

    def test_ip_literal_is_checked_against_the_ip_san(self):
        self.put("nc/ip.txt", b"by address\n")
        r = get(f"https://127.0.0.1:{GOOD}/nc/ip.txt")
        self.assertEqual(h.status_of(r), 200, r[:300])
        self.assertEqual(body_of(r), b"by address\n")

    def test_connection_is_kept_alive_and_sessions_resume(self):
        self.put("nc/k.txt", b"k\n")
        for _ in range(4):
            self.assertEqual(h.status_of(get(f"https://localhost:{GOOD}/nc/k.txt")), 200)
        conns = {e[0] for e in self.nginx_log(GOOD) if e[2] == "/nc/k.txt"}
        self.assertLessEqual(len(conns), 2, conns)  # pooled per worker (2 workers): at most 2 handshakes
        # An origin that closes after every request: each new connection resumes the session.
        for _ in range(4):
            self.assertEqual(h.status_of(get(f"https://localhost:{ONE_SHOT}/nc/k.txt")), 200)
        log = [e for e in self.nginx_log(ONE_SHOT) if e[2] == "/nc/k.txt"]
        self.assertEqual(len({e[0] for e in log}), 4, log)  # four connections
        self.assertGreaterEqual(sum(1 for e in log if e[1] == "r"), 2, log)  # all but each worker's first resumed

    def assert_502_naming(self, url, pattern):
        r = get(url)
        self.assertEqual(h.status_of(r), 502, r[:400])
        self.assertRegex(body_of(r).decode(errors="replace"), pattern)
        return r

    def test_self_signed_origin_is_refused_with_the_reason(self):
        self.put("nc/s.txt", b"secret\n")
        r = self.assert_502_naming(f"https://localhost:{SELF_SIGNED}/nc/s.txt", r"certificate verify failed: self.signed")
        self.assertNotIn(b"secret", r)

    def test_wrong_name_is_refused_with_the_reason(self):
        self.assert_502_naming(f"https://localhost:{WRONG_NAME}/nc/s.txt", r"certificate verify failed: [Hh]ostname mismatch")

    def test_expired_certificate_is_refused_with_the_reason(self):
        self.assert_502_naming(f"https://localhost:{EXPIRED}/nc/s.txt", r"certificate verify failed: certificate has expired")

    def test_origin_that_does_not_speak_tls(self):
        # Plain HTTP answers the ClientHello with a 400 page: not a TLS record.
        self.assert_502_naming(f"https://localhost:{PLAIN}/nc/s.txt", r"TLS handshake with localhost failed")
        # A server that closes at once: no close_notify, no handshake.
        self.assert_502_naming(f"https://localhost:{CLOSER}/x", r"TLS handshake with localhost failed")
        # The proxy itself is still fine.
        self.assertEqual(h.status_of(get(f"https://localhost:{GOOD}/nc/k2.txt")), 404)

    def tls_counters(self):
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN}/metrics", timeout=10) as r:
            text = r.read().decode()
        out = {}
        for name in ("handshakes", "resumed", "verify_failures"):
            m = re.search(rf"^outpost_origin_tls_{name}_total(?:{{[^}}]*}})? (\S+)$", text, re.M)
            self.assertIsNotNone(m, name)
            out[name] = float(m.group(1))
        return out

    def test_tls_counters(self):
        self.put("nc/m.txt", b"m\n")
        for _ in range(4):  # warm: every worker has a session for ONE_SHOT
            get(f"https://localhost:{ONE_SHOT}/nc/m.txt")
        before = self.tls_counters()
        for _ in range(4):
            self.assertEqual(h.status_of(get(f"https://localhost:{ONE_SHOT}/nc/m.txt")), 200)
        self.assertEqual(h.status_of(get(f"https://127.0.0.1:{SELF_SIGNED}/nc/m.txt")), 502)
        after = self.tls_counters()
        self.assertEqual(after["handshakes"] - before["handshakes"], 4)
        self.assertEqual(after["resumed"] - before["resumed"], 4)
        self.assertEqual(after["verify_failures"] - before["verify_failures"], 1)

    def test_other_schemes_are_still_501(self):
        r = h.raw_exchange(b"GET gopher://localhost/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", until_close=True)
        self.assertEqual(h.status_of(r), 501)


if __name__ == "__main__":
    h.main()
