#!/usr/bin/env python3
"""CONNECT tunnels: TLS to a real nginx origin through Outpost (certificate made here),
half-close relayed in both directions, idle timeout, port allow-list, dead origin."""
import os
import socket
import subprocess
import threading
import time

import harness as h

ECHO_PORT = 9000


def echo_server(port, ready):
    """Echoes what it gets; when the client half-closes, sends 'bye' and closes."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    ready.set()
    while True:
        conn, _ = srv.accept()

        def serve(c):
            with c:
                try:
                    while True:
                        data = c.recv(65536)
                        if not data:
                            c.sendall(b"bye")
                            c.shutdown(socket.SHUT_WR)
                            return
                        c.sendall(data)
                except OSError:
                    pass  # the proxy closed an idle tunnel

        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def open_tunnel(target, port=h.PROXY_PORT):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target))
    resp = b""
    while b"\r\n\r\n" not in resp:
        chunk = s.recv(1)
        if not chunk:
            break
        resp += chunk
    return s, resp


class ProxyConnect(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cert = os.path.join(cls.tmp, "cert.pem")
        cls.key = os.path.join(cls.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", cls.key, "-out", cls.cert, "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
        cls.nginx = h.Nginx(cls.procs, cls.tmp, tls_port=h.NGINX_TLS_PORT, cert=cls.cert, key=cls.key)
        ready = threading.Event()
        threading.Thread(target=echo_server, args=(ECHO_PORT, ready), daemon=True).start()
        ready.wait(5)
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config="[proxy]\nlisten = [\"127.0.0.1:3128\"]\ntunnel_idle_timeout = 1.5\n",
                                acl='[acl]\nallow_clients = ["127.0.0.0/8"]\nallow_hosts = ["localhost"]\n'
                                    'allow_networks = ["127.0.0.0/8", "::1/128"]\nconnect_ports = [443, 8443, 8444, 9000]\n').start()

    def test_https_through_tunnel_with_verification(self):
        data = os.urandom(2_000_000)
        self.nginx.put_file("secret.bin", data)
        out = os.path.join(self.tmp, "dl.bin")
        h.curl("--cacert", self.cert, "-o", out, f"https://localhost:{h.NGINX_TLS_PORT}/secret.bin")
        with open(out, "rb") as f:
            self.assertEqual(h.sha256(f.read()), h.sha256(data))
        # Several requests over one tunnel (keep-alive inside TLS).
        r = h.curl("--cacert", self.cert, f"https://localhost:{h.NGINX_TLS_PORT}/secret.bin",
                   f"https://localhost:{h.NGINX_TLS_PORT}/secret.bin", "-o", "/dev/null", "-o", "/dev/null", "-v")
        self.assertEqual(r.stderr.count(b"CONNECT localhost:8443"), 1)
        lines = self.outpost.access_lines()
        self.assertTrue(any("TCP_TUNNEL/200" in l and " CONNECT localhost:8443 " in l for l in lines), lines)

    def test_half_close_both_directions(self):
        s, resp = open_tunnel(b"127.0.0.1:%d" % ECHO_PORT)
        self.assertIn(b"200 Connection established", resp)
        s.sendall(b"ping")
        self.assertEqual(s.recv(4), b"ping")
        s.shutdown(socket.SHUT_WR)  # client half-close reaches the server ...
        rest = b""
        while True:
            chunk = s.recv(100)
            if not chunk:
                break
            rest += chunk
        self.assertEqual(rest, b"bye")  # ... whose reply and close come back
        s.close()

    def test_idle_tunnel_is_closed(self):
        s, resp = open_tunnel(b"127.0.0.1:%d" % ECHO_PORT)
        self.assertIn(b"200", resp)
        t0 = time.time()
        s.settimeout(10)
        self.assertEqual(s.recv(100), b"")  # closed by the proxy without any traffic
        self.assertGreater(time.time() - t0, 1.0)
        self.assertLess(time.time() - t0, 5)
        s.close()

    def test_port_not_allowed(self):
        s, resp = open_tunnel(b"127.0.0.1:22")
        self.assertEqual(h.status_of(resp), 403)
        s.close()

    def test_dead_origin(self):
        s, resp = open_tunnel(b"127.0.0.1:8444")
        self.assertEqual(h.status_of(resp), 502)
        s.close()

    def test_denied_host(self):
        s, resp = open_tunnel(b"accounts.google.com:443")
        self.assertEqual(h.status_of(resp), 403)
        s.close()


if __name__ == "__main__":
    h.main()
