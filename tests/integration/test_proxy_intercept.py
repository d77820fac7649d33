#!/usr/bin/env python3
"""HTTPS interception ([intercept]): CONNECT tunnels to destinations in the bump list are
answered by Outpost with a certificate it mints from its own CA, and the requests inside are
ordinary proxy requests for https://host:port/... (cached, logged, verified against the
origin); everything else is spliced untouched. Real curl and openssl clients, a real nginx
HTTPS origin signed by a test origin CA, names from a local zone."""
import concurrent.futures
import os
import re
import socket
import ssl
import subprocess
import time
import urllib.request

import harness as h

ORIGIN = 8443      # origin CA: origin.test, splice.test, fresh.test, c1..c9.test
SELF_SIGNED = 8444  # self-signed (for localhost)
WRONG_NAME = 8445  # origin CA, for wrong.test only
TLS_PORT = 3129    # Outpost's own TLS listener
ADMIN = 9090


def start_nginx(procs, workdir, certs):
    www = os.path.join(workdir, "www")

    def server(port, name):
        return h.nginx_tls_server(port, certs, name, www)
    servers = ("ssl_protocols TLSv1.2 TLSv1.3;\n" + server(ORIGIN, "origin") + server(SELF_SIGNED, "self") +
               server(WRONG_NAME, "wrong"))
    return h.Nginx(procs, workdir, extra_http=servers, access_format="$server_port $connection $request_uri",
                   extra_ports=(ORIGIN, SELF_SIGNED, WRONG_NAME))


class Intercept(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.certs = os.path.join(cls.tmp, "certs")
        os.makedirs(c)
        h.make_test_pki(c)  # the ORIGINS' CA (ca.pem) and their certificates
        names = ",".join(f"DNS:{n}" for n in ["origin.test", "splice.test", "fresh.test"] +
                         [f"c{i}.test" for i in range(10)])
        h.sign_leaf(c, "origin", names)
        h.sign_leaf(c, "proxy", "IP:127.0.0.1")
        cls.nginx = start_nginx(cls.procs, cls.tmp, c)
        cls.www = cls.nginx.root
        for sub in ("fresh", "nc"):
            os.makedirs(os.path.join(cls.www, sub), exist_ok=True)
        # The interception CA, made by Outpost itself.
        cls.ca = os.path.join(cls.tmp, "intercept-ca.pem")
        cls.ca_key = os.path.join(cls.tmp, "intercept-ca.key")
        subprocess.run([h.OUTPOST, "ca", "init", "--cert", cls.ca, "--key", cls.ca_key], check=True,
                       capture_output=True)
        cls.outpost = h.Outpost(
            cls.procs, cls.tmp,
            extra_config=f'[proxy]\nlisten = ["127.0.0.1:{h.PROXY_PORT}"]\ntls_listen = ["127.0.0.1:{TLS_PORT}"]\n'
                         f'tls_certificate = "{c}/proxy.pem"\ntls_key = "{c}/proxy.key"\n'
                         f'[origin]\nca_file = "{c}/ca.pem"\n'
                         f'[intercept]\nca_certificate = "{cls.ca}"\nca_key = "{cls.ca_key}"\n'
                         f'bump = ["*.test", "127.0.0.1"]\nsplice = ["splice.test"]\npeek_timeout = 2\n'
                         + h.local_test_zone(cls.tmp, ["origin", "splice", "fresh", "wrong"] +
                                             [f"c{i}" for i in range(10)]) +
                         f'[admin]\nenabled = true\nlisten = ["127.0.0.1:{ADMIN}"]\n',
            acl='[acl]\nallow_clients = ["127.0.0.0/8"]\nallow_hosts = ["*.test", "localhost"]\n'
                f'allow_networks = ["127.0.0.0/8"]\nconnect_ports = [{ORIGIN}, {SELF_SIGNED}, {WRONG_NAME}]\n').start()
        h.wait_port(TLS_PORT, proc=cls.outpost.proc)

    def put(self, path, data):
        with open(os.path.join(self.www, path), "wb") as f:
            f.write(data)

    def bumped(self, url, *args, check=True):
        """curl through the proxy trusting only the interception CA."""
        return h.curl("--cacert", self.ca, *args, url, check=check)

    def nginx_uris(self):
        with open(os.path.join(self.tmp, "nginx-access.log")) as f:
            return [l.split()[2] for l in f if l.strip()]

    def wait_log_line(self, pred, timeout=5):
        deadline = time.time() + timeout
        while True:
            lines = self.outpost.access_lines()
            if any(pred(l) for l in lines) or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertTrue(any(pred(l) for l in lines), lines)

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN}/metrics", timeout=10) as r:
            text = r.read().decode()
        out = {}
        for m in re.finditer(r"^(outpost_(?:tls|origin_tls|client_tls)\w*)(\{[^}]*\})? (\S+)$", text, re.M):
            key = m.group(1) + (m.group(2) or "")
            out[key] = out.get(key, 0) + float(m.group(3))
        return out

    def leaf_of(self, host, port, via=("127.0.0.1", h.PROXY_PORT), servername=True):
        """The certificate presented inside a CONNECT tunnel to host:port (DER), and the TLS
        socket's verification result against the interception CA."""
        s = socket.create_connection(via, timeout=10)
        s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(1)
            if not chunk:
                raise AssertionError(f"no CONNECT answer: {head!r}")
            head += chunk
        self.assertIn(b" 200 ", head.split(b"\r\n")[0])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        t = ctx.wrap_socket(s, server_hostname=host if servername else None)
        der = t.getpeercert(binary_form=True)
        t.close()
        return der

    @staticmethod
    def client_hello(server_name, cafile=None):
        """A TLS client over memory BIOs that has written its ClientHello: (SSLObject, incoming
        BIO, outgoing BIO, the hello's bytes). Verifies against `cafile`, or not at all."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if cafile:
            ctx.load_verify_locations(cafile)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return tls, incoming, outgoing, outgoing.read()

    def x509_text(self, der):
        return subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-text", "-fingerprint", "-sha256"],
                              input=der, capture_output=True, check=True).stdout.decode()

    # ---------------------------------------------------------------- bump

    def test_bumped_get_is_cached_without_a_second_origin_handshake(self):
        data = os.urandom(200_000)
        self.put("fresh/a.bin", data)
        before = self.metrics()
        r1 = self.bumped(f"https://c1.test:{ORIGIN}/fresh/a.bin")
        self.assertEqual(h.sha256(r1.stdout), h.sha256(data))
        mid = self.metrics()
        r2 = self.bumped(f"https://c1.test:{ORIGIN}/fresh/a.bin", "-D", "-")
        self.assertRegex(r2.stdout, rb"(?i)cache-status: [^\r]*hit")
        self.assertEqual(h.sha256(r2.stdout.split(b"\r\n\r\n", 2)[2]), h.sha256(data))  # after CONNECT's head
        after = self.metrics()
        # One origin fetch, one origin TLS handshake (a name no other test uses: no pooled
        # connection), for two bumped client connections.
        self.assertEqual(self.nginx_uris().count("/fresh/a.bin"), 1)
        self.assertEqual(mid["outpost_origin_tls_handshakes_total"] - before["outpost_origin_tls_handshakes_total"], 1)
        self.assertEqual(after["outpost_origin_tls_handshakes_total"], mid["outpost_origin_tls_handshakes_total"])
        self.assertEqual(after['outpost_tls_intercepted_total{decision="bump"}'] -
                         before.get('outpost_tls_intercepted_total{decision="bump"}', 0), 2)
        self.assertEqual(after['outpost_client_tls_handshakes_total{kind="bump"}'] -
                         before.get('outpost_client_tls_handshakes_total{kind="bump"}', 0), 2)
        # The access log names the https URI, and the CONNECT as a bump with its SNI.
        self.wait_log_line(lambda l: f"GET https://c1.test:{ORIGIN}/fresh/a.bin" in l)
        self.wait_log_line(lambda l: f"CONNECT c1.test:{ORIGIN}" in l and l.endswith(" bump:c1.test"))

    def test_minted_certificate_fields(self):
        text = self.x509_text(self.leaf_of("origin.test", ORIGIN))
        ca = subprocess.run(["openssl", "x509", "-in", self.ca, "-noout", "-text", "-subject"], capture_output=True,
                            check=True).stdout.decode()
        ca_subject = re.search(r"^subject=(.*)$", ca, re.M).group(1).strip()
        self.assertIn("DNS:origin.test", text)
        self.assertIn("CA:FALSE", text)
        issuer = re.search(r"Issuer: (.*)", text).group(1).strip()
        self.assertEqual(issuer.replace(" ", ""), ca_subject.replace(" ", ""))
        # Its own key and SKI, not the CA's.
        ski = re.search(r"Subject Key Identifier:\s*\n\s*(\S+)", text).group(1)
        ca_ski = re.search(r"Subject Key Identifier:\s*\n\s*(\S+)", ca).group(1)
        self.assertNotEqual(ski, ca_ski)
        pub = re.search(r"pub:\s*\n((?:\s+[0-9a-f:]+\n)+)", text).group(1)
        ca_pub = re.search(r"pub:\s*\n((?:\s+[0-9a-f:]+\n)+)", ca).group(1)
        self.assertNotEqual(pub, ca_pub)
        # At most 397 days.
        nb = re.search(r"Not Before: (.*)", text).group(1).strip()
        na = re.search(r"Not After : (.*)", text).group(1).strip()
        fmt = "%b %d %H:%M:%S %Y %Z"
        days = (time.mktime(time.strptime(na, fmt)) - time.mktime(time.strptime(nb, fmt))) / 86400
        self.assertLessEqual(days, 397)
        # A client trusting the CA accepts it for the name (curl checks the chain and the SAN).
        self.put("nc/ok.txt", b"ok\n")
        self.assertEqual(self.bumped(f"https://origin.test:{ORIGIN}/nc/ok.txt").stdout, b"ok\n")

    def test_leaf_copies_the_origins_names_once_seen(self):
        # Before the origin was ever dialled: minted from the server name alone (no origin
        # connection is opened to mint).
        first = self.x509_text(self.leaf_of("c2.test", ORIGIN))
        self.assertIn("DNS:c2.test", first)
        self.assertNotIn("DNS:splice.test", first)
        # A request inside goes to the origin, whose verified certificate names more.
        self.put("nc/c2.txt", b"c2\n")
        self.assertEqual(self.bumped(f"https://c2.test:{ORIGIN}/nc/c2.txt").stdout, b"c2\n")
        later = self.x509_text(self.leaf_of("c2.test", ORIGIN))
        sans = re.search(r"Subject Alternative Name:\s*\n\s*(.*)", later).group(1)
        self.assertTrue(sans.startswith("DNS:c2.test"), sans)
        for n in ("origin.test", "splice.test", "fresh.test", "c9.test"):
            self.assertIn(f"DNS:{n}", sans)

    def test_ip_target_gets_an_ip_san(self):
        text = self.x509_text(self.leaf_of("127.0.0.1", ORIGIN, servername=False))
        self.assertIn("IP Address:127.0.0.1", text)

    def test_concurrent_handshakes_for_one_name_mint_once(self):
        before = self.metrics().get("outpost_tls_leaf_mints_total", 0)
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            ders = list(ex.map(lambda _: self.leaf_of("c7.test", ORIGIN), range(8)))
        self.assertEqual(len(set(ders)), 1)
        self.assertEqual(self.metrics()["outpost_tls_leaf_mints_total"] - before, 1)

    # ---------------------------------------------------------------- splice

    def test_splice_list_wins_and_the_client_sees_the_origin(self):
        self.put("nc/s.txt", b"spliced\n")
        r = h.curl("--cacert", f"{self.certs}/ca.pem", f"https://splice.test:{ORIGIN}/nc/s.txt")
        self.assertEqual(r.stdout, b"spliced\n")
        # The interception CA is of no use there: the certificate is the origin's own.
        r = self.bumped(f"https://splice.test:{ORIGIN}/nc/s.txt", check=False)
        self.assertNotEqual(r.returncode, 0)
        # Not a bump candidate: tunnelled at once, without reading its ClientHello.
        self.wait_log_line(lambda l: f"CONNECT splice.test:{ORIGIN}" in l and l.endswith(" splice:-"))


    def test_hello_without_sni_or_for_another_name_is_spliced(self):
        # No SNI on a name target: spliced (the origin's own certificate comes back).
        der = self.leaf_of("origin.test", ORIGIN, servername=False)
        self.assertIn("Outpost test CA", self.x509_text(der))
        # SNI naming another host than the CONNECT target: spliced.
        s = socket.create_connection(("127.0.0.1", h.PROXY_PORT), timeout=10)
        s.sendall(f"CONNECT origin.test:{ORIGIN} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        self.assertIn(b" 200 ", s.recv(4096))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        t = ctx.wrap_socket(s, server_hostname="fresh.test")
        self.assertIn("Outpost test CA", self.x509_text(t.getpeercert(binary_form=True)))
        t.close()
        # The log shows the decision with the server name the peek read.
        self.wait_log_line(lambda l: f"CONNECT origin.test:{ORIGIN}" in l and l.endswith(" splice:fresh.test"))

    def test_not_tls_is_spliced(self):
        # Plain HTTP inside a tunnel to a bumpable name goes to the origin untouched (nginx
        # answers 400 to plain HTTP on its TLS port).
        s = socket.create_connection(("127.0.0.1", h.PROXY_PORT), timeout=10)
        s.sendall(f"CONNECT origin.test:{ORIGIN} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        self.assertIn(b" 200 ", s.recv(4096))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = h.read_until_close(s)
        self.assertIn(b"400", data.split(b"\r\n")[0])

    def test_silent_client_is_spliced_after_the_peek_timeout(self):
        # A protocol where the server speaks first: after peek_timeout the tunnel opens anyway.
        s = socket.create_connection(("127.0.0.1", h.PROXY_PORT), timeout=10)
        s.sendall(f"CONNECT origin.test:{ORIGIN} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        self.assertIn(b" 200 ", s.recv(4096))
        time.sleep(2.5)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(f"{self.certs}/ca.pem")
        t = ctx.wrap_socket(s, server_hostname="origin.test")  # the origin's own certificate
        t.close()

    # ---------------------------------------------------------------- origin failures

    def test_unverifiable_origins_get_an_error_page_naming_the_reason(self):
        r = self.bumped(f"https://origin.test:{SELF_SIGNED}/x", "-D", "-", check=False)
        self.assertEqual(r.returncode, 0, r.stderr)  # the client trusts the minted certificate
        self.assertIn(b"HTTP/1.1 502 ", r.stdout)
        self.assertIn(b"self-signed certificate", r.stdout)
        r = self.bumped(f"https://origin.test:{WRONG_NAME}/x", "-D", "-", check=False)
        self.assertIn(b"HTTP/1.1 502 ", r.stdout)
        self.assertIn(b"hostname mismatch", r.stdout)

    # ---------------------------------------------------------------- the TLS listener

    def test_interception_on_the_tls_listener(self):
        data = os.urandom(50_000)
        self.put("fresh/l.bin", data)
        r = h.curl("--proxy", f"https://127.0.0.1:{TLS_PORT}", "--proxy-cacert", f"{self.certs}/ca.pem",
                   "--cacert", self.ca, f"https://fresh.test:{ORIGIN}/fresh/l.bin", proxy=None)
        self.assertEqual(h.sha256(r.stdout), h.sha256(data))
        before = self.metrics()
        r = h.curl("--proxy", f"https://127.0.0.1:{TLS_PORT}", "--proxy-cacert", f"{self.certs}/ca.pem",
                   "--cacert", self.ca, "-D", "-", f"https://fresh.test:{ORIGIN}/fresh/l.bin", proxy=None)
        after = self.metrics()
        for kind in ("listener", "bump"):  # TLS to the proxy, and TLS inside the tunnel
            self.assertEqual(after[f'outpost_client_tls_handshakes_total{{kind="{kind}"}}'] -
                             before[f'outpost_client_tls_handshakes_total{{kind="{kind}"}}'], 1)
        self.assertRegex(r.stdout, rb"(?i)cache-status: [^\r]*hit")
        # And without interception (spliced) over the same listener.
        self.put("nc/l.txt", b"listener splice\n")
        r = h.curl("--proxy", f"https://127.0.0.1:{TLS_PORT}", "--proxy-cacert", f"{self.certs}/ca.pem",
                   "--cacert", f"{self.certs}/ca.pem", f"https://splice.test:{ORIGIN}/nc/l.txt", proxy=None)
        self.assertEqual(r.stdout, b"listener splice\n")

    # ---------------------------------------------------------------- hostile clients

    def test_hello_trickled_a_byte_at_a_time_is_bumped(self):
        s = socket.create_connection(("127.0.0.1", h.PROXY_PORT), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(f"CONNECT c4.test:{ORIGIN} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        self.assertIn(b" 200 ", s.recv(4096))
        tls, incoming, outgoing, hello = self.client_hello("c4.test", self.ca)
        for b in hello:
            s.send(bytes([b]))
        # The rest of the handshake, verified against the interception CA: it was bumped.
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if outgoing.pending:
                    s.sendall(outgoing.read())
                data = s.recv(65536)
                self.assertTrue(data, "the proxy closed the connection")
                incoming.write(data)
        if outgoing.pending:
            s.sendall(outgoing.read())
        self.assertIn("Outpost interception CA", str(tls.getpeercert()["issuer"]))
        s.close()

    def test_broken_hellos_do_not_harm_the_proxy(self):
        for payload in (b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00",  # a hello cut short, then EOF
                        b"\x16\x03\x01\xff\xff" + b"\x00" * 100,         # a record that never completes
                        os.urandom(3000)):
            s = socket.create_connection(("127.0.0.1", h.PROXY_PORT), timeout=10)
            s.sendall(f"CONNECT origin.test:{ORIGIN} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            s.recv(4096)
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(10)
            try:
                while s.recv(65536):
                    pass
            except OSError:
                pass
            s.close()
        # A whole ClientHello, then nothing: bumped, and the handshake is counted as failed
        # once the client goes.
        before = self.metrics().get('outpost_client_tls_handshake_failures_total{kind="bump"}', 0)
        s = socket.create_connection(("127.0.0.1", h.PROXY_PORT), timeout=10)
        s.sendall(f"CONNECT c3.test:{ORIGIN} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        s.recv(4096)
        s.sendall(self.client_hello("c3.test")[3])  # the ClientHello alone
        s.recv(65536)               # the proxy's ServerHello: it bumped
        s.close()
        deadline = time.time() + 5
        while (self.metrics().get('outpost_client_tls_handshake_failures_total{kind="bump"}', 0) == before and
               time.time() < deadline):
            time.sleep(0.1)
        self.assertEqual(self.metrics()['outpost_client_tls_handshake_failures_total{kind="bump"}'] - before, 1)
        # Still serving.
        self.put("nc/alive.txt", b"alive\n")
        self.assertEqual(self.bumped(f"https://origin.test:{ORIGIN}/nc/alive.txt").stdout, b"alive\n")
        self.assertIsNone(self.outpost.proc.poll())


class MintedLeavesPersist(h.IntegrationTest):
    """Minted leaves live in the store's certificate namespace: with a disk tier, a restarted
    Outpost serves the same leaf (same key) without minting again."""
    PORT = h.PROXY_PORT + 20
    ADMIN = ADMIN + 20

    def test_leaf_survives_a_restart(self):
        ca = os.path.join(self.tmp, "ca.pem")
        key = os.path.join(self.tmp, "ca.key")
        subprocess.run([h.OUTPOST, "ca", "init", "--cert", ca, "--key", key], check=True, capture_output=True)
        disk = os.path.join(self.tmp, "disk")
        config = (f'[proxy]\nlisten = ["127.0.0.1:{self.PORT}"]\n'
                  f'[intercept]\nca_certificate = "{ca}"\nca_key = "{key}"\nbump = ["127.0.0.1"]\n'
                  f'[cache]\ndisk_dir = "{disk}"\ndisk_size = 67108864\nsegment_size = 4194304\nmax_object_size = 1048576\n'
                  f'[admin]\nenabled = true\nlisten = ["127.0.0.1:{self.ADMIN}"]\n')
        acl = '[acl]\nallow_clients = ["127.0.0.0/8"]\nconnect_ports = [8443]\nallow_networks = ["127.0.0.0/8"]\n'

        def leaf_and_mints():
            op = h.Outpost(self.procs, self.tmp, extra_config=config, port=self.PORT, acl=acl).start()
            try:
                der = Intercept.leaf_of(self, "127.0.0.1", 8443, via=("127.0.0.1", self.PORT), servername=False)
                with urllib.request.urlopen(f"http://127.0.0.1:{self.ADMIN}/metrics", timeout=10) as r:
                    text = r.read().decode()
                mints = sum(float(v) for v in re.findall(r"^outpost_tls_leaf_mints_total (\S+)$", text, re.M))
            finally:
                self.assertEqual(op.stop(), 0)
            return der, mints

        first, minted = leaf_and_mints()
        self.assertEqual(minted, 1)
        second, minted = leaf_and_mints()
        self.assertEqual(second, first)
        self.assertEqual(minted, 0)


if __name__ == "__main__":
    h.main()
