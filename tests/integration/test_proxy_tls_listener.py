#!/usr/bin/env python3
"""The proxy over TLS ([proxy] tls_listen): curl with an https:// proxy setting sends plain
proxy requests and CONNECT inside TLS; the certificate is read again on SIGHUP; clients that
do not finish a handshake, send garbage or plain HTTP are dropped without harm."""
import os
import signal
import socket
import ssl
import time

import harness as h

TLS_PORT = 3129


def https_proxy_curl(*args, check=True):
    return h.curl("--proxy-cacert", os.path.join(TlsListener.certs, "ca.pem"), *args, proxy=None, check=check)


class TlsListener(h.IntegrationTest):
    certs = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs = TlsListener.certs = os.path.join(cls.tmp, "certs")
        os.makedirs(cls.certs)
        h.make_test_pki(cls.certs)
        h.sign_leaf(cls.certs, "proxy", "DNS:localhost,IP:127.0.0.1")
        cls.nginx = h.Nginx(cls.procs, cls.tmp, tls_port=h.NGINX_TLS_PORT, cert=f"{cls.certs}/good.pem",
                            key=f"{cls.certs}/good.key")
        c = cls.certs
        cls.outpost = h.Outpost(
            cls.procs, cls.tmp,
            extra_config=f'[proxy]\nlisten = ["127.0.0.1:{h.PROXY_PORT}"]\ntls_listen = ["127.0.0.1:{TLS_PORT}"]\n'
                         f'tls_certificate = "{c}/proxy.pem"\ntls_key = "{c}/proxy.key"\nheader_timeout = 1\n'
                         f'[origin]\nca_file = "{c}/ca.pem"\n').start()
        h.wait_port(TLS_PORT, proc=cls.outpost.proc)

    def test_plain_requests_over_tls_to_the_proxy(self):
        data = os.urandom(500_000)
        self.nginx.put_file("p.bin", data)
        r = https_proxy_curl("--proxy", f"https://localhost:{TLS_PORT}", f"http://127.0.0.1:{h.NGINX_PORT}/p.bin")
        self.assertEqual(h.sha256(r.stdout), h.sha256(data))
        # Several requests on one TLS connection to the proxy.
        r = https_proxy_curl("-v", "--proxy", f"https://localhost:{TLS_PORT}", f"http://127.0.0.1:{h.NGINX_PORT}/p.bin",
                             f"http://127.0.0.1:{h.NGINX_PORT}/p.bin", "-o", "/dev/null", "-o", "/dev/null")
        self.assertIn(b"Re-using existing connection", r.stderr)
        self.assertEqual(r.stderr.count(b"SSL connection using"), 1, r.stderr.decode(errors="replace"))

    def test_connect_over_tls_to_the_proxy(self):
        data = os.urandom(300_000)
        self.nginx.put_file("c.bin", data)
        r = https_proxy_curl("--proxy", f"https://127.0.0.1:{TLS_PORT}", "--cacert", f"{self.certs}/ca.pem",
                             f"https://localhost:{h.NGINX_TLS_PORT}/c.bin")
        self.assertEqual(h.sha256(r.stdout), h.sha256(data))

    def test_proxy_certificate_is_verified_by_the_client(self):
        # A client that trusts another CA refuses the proxy: the proxy presents its own chain.
        r = h.curl("--proxy", f"https://localhost:{TLS_PORT}", "--proxy-cacert", f"{self.certs}/self.pem",
                   f"http://127.0.0.1:{h.NGINX_PORT}/", proxy=None, check=False)
        self.assertNotEqual(r.returncode, 0)

    def served_certificate(self):
        ctx = ssl.create_default_context(cafile=f"{self.certs}/ca.pem")
        with socket.create_connection(("127.0.0.1", TLS_PORT), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                return t.getpeercert(binary_form=True)

    def test_certificate_is_read_again_on_sighup(self):
        before = self.served_certificate()
        h.sign_leaf(self.certs, "proxy", "DNS:localhost,IP:127.0.0.1")  # renewed in place: new key and serial
        with open(f"{self.certs}/proxy.pem") as f:
            renewed = ssl.PEM_cert_to_DER_cert(f.read())
        self.assertNotEqual(before, renewed)
        self.outpost.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while self.served_certificate() != renewed and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.served_certificate(), renewed)
        r = https_proxy_curl("--proxy", f"https://localhost:{TLS_PORT}", f"http://127.0.0.1:{h.NGINX_PORT}/")
        self.assertEqual(r.returncode, 0)

    def assert_dropped(self, payload, within=5):
        with socket.create_connection(("127.0.0.1", TLS_PORT), timeout=within) as s:
            if payload:
                s.sendall(payload)
            start = time.time()
            got = b""
            try:
                while True:
                    c = s.recv(4096)
                    if not c:
                        break
                    got += c
            except ConnectionResetError:
                pass
            self.assertLess(time.time() - start, within)
        self.assertNotIn(b"HTTP/1.1 200", got)
        return got

    def test_bad_clients_are_dropped(self):
        self.assert_dropped(os.urandom(2000))                                            # garbage
        self.assert_dropped(b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % h.NGINX_PORT)  # plain HTTP
        self.assert_dropped(b"\x16\x03\x01\x00\x10" + b"\x01\x00\x00")                  # a cut ClientHello
        self.assert_dropped(b"")  # silence: the header timeout (1 s) covers the handshake
        r = https_proxy_curl("--proxy", f"https://localhost:{TLS_PORT}", f"http://127.0.0.1:{h.NGINX_PORT}/")
        self.assertEqual(r.returncode, 0)  # and the proxy is fine


class CaCommand(h.IntegrationTest):
    """`outpost ca init` / `ca show` as a user runs them; checked with openssl."""

    def run_outpost(self, *args):
        import subprocess
        return subprocess.run([h.OUTPOST, *args], capture_output=True, text=True, cwd=self.tmp, timeout=30)

    def test_init_writes_a_ca_and_show_prints_its_fingerprint(self):
        import subprocess
        r = self.run_outpost("ca", "init", "--rsa")
        self.assertEqual(r.returncode, 0, r.stderr)
        key, cert = os.path.join(self.tmp, "outpost-ca.key"), os.path.join(self.tmp, "outpost-ca.pem")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        text = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-text", "-fingerprint", "-sha256"],
                              capture_output=True, text=True, check=True).stdout
        self.assertIn("CA:TRUE", text)
        self.assertIn("rsaEncryption", text)
        fingerprint = text.strip().splitlines()[-1].split("=", 1)[1]
        self.assertIn(fingerprint, r.stdout)
        self.assertIn("certutil", r.stdout)
        # Never replaced silently.
        again = self.run_outpost("ca", "init")
        self.assertNotEqual(again.returncode, 0)
        self.assertIn("exists", again.stderr)
        self.assertIn(fingerprint, self.run_outpost("ca", "show").stdout)
        bad = self.run_outpost("ca", "show", "--cert", key)
        self.assertNotEqual(bad.returncode, 0)


if __name__ == "__main__":
    h.main()
