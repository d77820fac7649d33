#!/usr/bin/env python3
"""`outpost ctl` over TCP with mutual TLS ([control] tls_listen), against a running Outpost:
certificates made by `outpost ctl setup` (and by the openssl CLI for the bad ones); every
command over TLS gives what it gives over the Unix socket; the client found through the
configuration file; refusals logged (no client certificate, one from another CA, an expired
one, a client certificate without clientAuth, TLS 1.1); the server's certificate verified by
the client (another CA, another name); hostile clients (plain text to the TLS port, a stalled
handshake cut after control.timeout, 40 half-open handshakes of which at most 16 are held,
the Unix socket still answering); reload keeps the listener (a connection made before it is
served after it), moves it, takes new certificates and closes it."""
import os
import re
import shutil
import socket
import ssl
import subprocess
import time

import harness as h

TLS_PORT = 8953
TIMEOUT = 5  # control.timeout


class ControlTls(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = os.path.join(cls.tmp, "pki")
        r = subprocess.run([h.OUTPOST, "ctl", "setup", cls.pki], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        cls.setup_output = r.stdout
        # The bad ones, with the openssl CLI: signed by the setup's CA (expired; serverAuth
        # only) and by another CA.
        cls.bad = os.path.join(cls.tmp, "bad")
        os.makedirs(cls.bad)
        for f in ("ca.pem", "ca.key"):
            shutil.copy(os.path.join(cls.pki, f), cls.bad)
        h.ca_database(cls.bad)
        h.sign_leaf(cls.bad, "expired", None, dates=("20200101000000Z", "20200102000000Z"), eku="clientAuth")
        h.sign_leaf(cls.bad, "serveronly", None, eku="serverAuth")
        cls.other = os.path.join(cls.tmp, "other")
        os.makedirs(cls.other)
        h.make_test_pki(cls.other)
        h.sign_leaf(cls.other, "client", None, eku="clientAuth")
        h.sign_leaf(cls.other, "control", "DNS:outpost-control")
        cls.origin = h.TestOrigin(cls.procs)
        cls.sock = os.path.join(cls.tmp, "control.sock")
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config=cls.config_text()).start()
        h.wait_port(TLS_PORT, proc=cls.outpost.proc)

    @classmethod
    def config_text(cls, port=TLS_PORT, pki=None, listen=True):
        pki = pki or cls.pki
        listen_line = f'tls_listen = ["127.0.0.1:{port}"]\n' if listen else "tls_listen = []\n"
        return (f'[control]\nsocket = "{cls.sock}"\ntimeout = {TIMEOUT}\n{listen_line}'
                f'tls_certificate = "{pki}/server.pem"\ntls_key = "{pki}/server.key"\ntls_ca = "{pki}/ca.pem"\n'
                f'ctl_certificate = "{pki}/client.pem"\nctl_key = "{pki}/client.key"\n'
                f'[log]\nlevel = "debug"\nfile = "{cls.tmp}/outpost.log"\naccess_log = "{cls.tmp}/access.log"\n')

    def tls_ctl(self, *words, port=TLS_PORT, cert=None, key=None, ca=None, name=None, check=True):
        args = [h.OUTPOST, "ctl", "--server", f"127.0.0.1:{port}",
                "--cert", cert or f"{self.pki}/client.pem", "--key", key or f"{self.pki}/client.key",
                "--ca", ca or f"{self.pki}/ca.pem"]
        if name:
            args += ["--server-name", name]
        r = subprocess.run(args + list(words), capture_output=True, text=True, timeout=60)
        if check:
            self.assertEqual(r.returncode, 0, f"ctl {' '.join(words)}: {r.stdout}{r.stderr}")
        return r

    def unix_ctl(self, *words, check=True):
        r = subprocess.run([h.OUTPOST, "ctl", "-s", self.sock, *words], capture_output=True, text=True, timeout=60)
        if check:
            self.assertEqual(r.returncode, 0, f"ctl {' '.join(words)}: {r.stdout}{r.stderr}")
        return r

    def log_mark(self):
        return len(self.outpost.log_text())

    def wait_log(self, pattern, since=0, timeout=15):
        """A log line matching `pattern` written after the log_mark() `since`."""
        deadline = time.time() + timeout
        text = ""
        while time.time() < deadline:
            text = self.outpost.log_text()[since:]
            m = re.search(pattern, text)
            if m:
                return m
            time.sleep(0.1)
        self.fail(f"no log line matching {pattern!r}; the log ends with:\n{text[-3000:]}")

    def metrics(self):
        return h.parse_samples(self.unix_ctl("stats").stdout)

    def client_context(self, cert="client", pki=None, ca=None):
        pki = pki or self.pki
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(ca or f"{pki}/ca.pem")
        if cert:
            ctx.load_cert_chain(f"{pki}/{cert}.pem", f"{pki}/{cert}.key")
        return ctx

    def raw_tls(self, ctx, data=b"status\n", port=TLS_PORT):
        """The answer a Python TLS client gets, or the exception it ends with."""
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT + 10) as raw:
                with ctx.wrap_socket(raw, server_hostname="outpost-control") as s:
                    s.sendall(data)
                    return h.read_until_close(s)
        except (ssl.SSLError, OSError) as e:
            return e

    def test_setup_made_the_files(self):
        for f, mode in (("ca.pem", 0o644), ("ca.key", 0o600), ("server.pem", 0o644), ("server.key", 0o600),
                        ("client.pem", 0o644), ("client.key", 0o600)):
            self.assertEqual(os.stat(os.path.join(self.pki, f)).st_mode & 0o777, mode, f)
        self.assertIn(f'tls_ca = "{self.pki}/ca.pem"', self.setup_output)
        text = subprocess.run(["openssl", "x509", "-in", f"{self.pki}/server.pem", "-noout", "-text"],
                              capture_output=True, text=True).stdout
        self.assertIn("DNS:outpost-control", text)
        self.assertIn("TLS Web Server Authentication", text)
        text = subprocess.run(["openssl", "x509", "-in", f"{self.pki}/client.pem", "-noout", "-text"],
                              capture_output=True, text=True).stdout
        self.assertIn("TLS Web Client Authentication", text)
        # Never overwritten without --force.
        r = subprocess.run([h.OUTPOST, "ctl", "setup", self.pki], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn("exists", r.stderr)

    def test_every_command_as_over_the_socket(self):
        url = self.origin.url("/script/tls-info")
        self.origin.script("/script/tls-info", body="x" * 10, headers=[["Cache-Control", "max-age=300"]])
        h.curl("-s", "-o", "/dev/null", url)
        same = [("help",), ("log", "level", "debug"), ("log", "level", "loud"), ("purge", self.origin.url("/never")),
                ("cache", "info", self.origin.url("/never")), ("dns", "lookup", "nothing.test"),
                ("dns", "flush", "nothing.test"), ("dns", "flush", "--zone", "nothing.test"), ("frobnicate",),
                ("purge", "--prefix", self.origin.url("/never/"))]
        for words in same:
            a, b = self.tls_ctl(*words, check=False), self.unix_ctl(*words, check=False)
            self.assertEqual((a.returncode, a.stdout, a.stderr), (b.returncode, b.stdout, b.stderr), words)
        out = self.tls_ctl("status").stdout
        self.assertIn(f"pid: {self.outpost.proc.pid}\n", out)
        self.assertIn("workers: 2\n", out)
        stats = h.parse_samples(self.tls_ctl("stats").stdout)
        self.assertEqual(set(stats), set(self.metrics()))
        self.assertIn('outpost_control_connections{transport="tls"}', stats)
        self.assertEqual(self.tls_ctl("connections").stdout, self.unix_ctl("connections").stdout)
        self.assertIn("body: 10 bytes", self.tls_ctl("cache", "info", url).stdout)
        self.assertEqual(self.tls_ctl("purge", url).stdout, "purged 1 object(s)\n")
        self.assertIn("configuration reloaded", self.tls_ctl("reload").stdout)
        # The log names the client's address and certificate.
        self.wait_log(r"control: status \(from 127\.0\.0\.1:\d+, CN=outpost-ctl\)")

    def test_client_from_the_configuration(self):
        d = os.path.join(self.tmp, "client-config")
        os.makedirs(d, exist_ok=True)
        cfg = os.path.join(d, "ctl.toml")
        with open(cfg, "w") as f:
            f.write(self.config_text().replace(f'socket = "{self.sock}"\n', ""))
        r = subprocess.run([h.OUTPOST, "ctl", "-c", cfg, "status"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"pid: {self.outpost.proc.pid}\n", r.stdout)
        # --server with the configuration's files.
        r = subprocess.run([h.OUTPOST, "ctl", "-c", cfg, "--server", f"127.0.0.1:{TLS_PORT}", "help"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        # --server alone, no files anywhere: told what is missing.
        r = subprocess.run([h.OUTPOST, "ctl", "--server", f"127.0.0.1:{TLS_PORT}", "status"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--cert, --key and --ca", r.stderr)

    def test_clients_refused(self):
        refused0 = self.metrics()["outpost_control_tls_refused_total"]
        # No client certificate.
        mark = self.log_mark()
        got = self.raw_tls(self.client_context(cert=None))
        self.assertNotIsInstance(got, bytes, got)
        self.wait_log(r"control: TLS client 127\.0\.0\.1:\d+ refused: TLS handshake failed: "
                      r"peer did not return a certificate", mark)
        # One from another CA.
        mark = self.log_mark()
        r = self.tls_ctl("status", cert=f"{self.other}/client.pem", key=f"{self.other}/client.key", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("refused", r.stderr)
        self.wait_log(r"refused: TLS handshake failed: client certificate verify failed: "
                      r"unable to get local issuer certificate \(depth 0, subject CN=client\)", mark)
        # An expired one from the right CA.
        mark = self.log_mark()
        r = self.tls_ctl("status", cert=f"{self.bad}/expired.pem", key=f"{self.bad}/expired.key", check=False)
        self.assertEqual(r.returncode, 2)
        self.wait_log(r"client certificate verify failed: certificate has expired \(depth 0, subject CN=expired\)", mark)
        # One from the right CA, but not for client use.
        mark = self.log_mark()
        r = self.tls_ctl("status", cert=f"{self.bad}/serveronly.pem", key=f"{self.bad}/serveronly.key", check=False)
        self.assertEqual(r.returncode, 2)
        self.wait_log(r"client certificate verify failed: unsuitable certificate purpose \(depth 0, subject CN=serveronly\)", mark)
        # TLS 1.1 (TLS 1.2 is the minimum).
        mark = self.log_mark()
        r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{TLS_PORT}", "-tls1_1",
                            "-cipher", "DEFAULT:@SECLEVEL=0", "-cert", f"{self.pki}/client.pem",
                            "-key", f"{self.pki}/client.key"],
                           input="status\n", capture_output=True, text=True, timeout=30)
        self.assertNotIn("ok\nversion", r.stdout)
        self.wait_log(r"refused: TLS handshake failed: unsupported protocol", mark)
        self.assertGreaterEqual(self.metrics()["outpost_control_tls_refused_total"], refused0 + 5)
        # Still serving.
        self.assertIn("pid:", self.tls_ctl("status").stdout)

    def test_server_certificate_is_verified(self):
        r = self.tls_ctl("status", ca=f"{self.other}/ca.pem", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("TLS handshake with outpost-control failed: certificate verify failed: ", r.stderr)
        r = self.tls_ctl("status", name="other-name", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("hostname mismatch", r.stderr)
        r = self.tls_ctl("status", port=TLS_PORT + 1, check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot connect", r.stderr)

    def test_hostile_clients(self):
        # Plain text to the TLS port: a handshake failure, logged; no answer.
        mark = self.log_mark()
        with socket.create_connection(("127.0.0.1", TLS_PORT), timeout=TIMEOUT + 10) as s:
            s.sendall(b"status\n")
            self.assertNotIn(b"ok\n", h.read_until_close(s))
        self.wait_log(r"refused: TLS handshake failed: \w", mark)
        # A stalled handshake (half a ClientHello): cut after control.timeout, nothing held.
        mark = self.log_mark()
        with socket.create_connection(("127.0.0.1", TLS_PORT), timeout=TIMEOUT + 10) as s:
            s.sendall(bytes.fromhex("160301"))
            self.assertEqual(h.read_until_close(s), b"")
        self.wait_log(r"refused: no TLS handshake within control\.timeout", mark)
        # Many half-open handshakes: at most 16 are held; the others are closed at once, the
        # Unix socket still answers meanwhile.
        refused0 = self.metrics()["outpost_control_tls_refused_total"]
        held = [socket.create_connection(("127.0.0.1", TLS_PORT)) for _ in range(40)]
        try:
            closed = 0
            for s in held:
                s.settimeout(TIMEOUT + 10)
                if s.recv(100) == b"":
                    closed += 1
            self.assertEqual(closed, 40)  # 24 at once, the others after control.timeout
            m = self.metrics()
            self.assertGreaterEqual(m["outpost_control_tls_refused_total"], refused0 + 40)
        finally:
            for s in held:
                s.close()
        for _ in range(100):
            if self.metrics()['outpost_control_connections{transport="tls"}'] == 0:
                break
            time.sleep(0.1)
        self.assertEqual(self.metrics()['outpost_control_connections{transport="tls"}'], 0)
        self.assertIn("pid:", self.tls_ctl("status").stdout)
        self.assertIsNone(self.outpost.proc.poll())

    def test_half_open_flood_is_bounded(self):
        refused0 = self.metrics()["outpost_control_tls_refused_total"]
        held = [socket.create_connection(("127.0.0.1", TLS_PORT)) for _ in range(40)]
        try:
            # While they are open the Unix socket answers, and no more than 16 are held.
            m = self.metrics()
            self.assertLessEqual(m['outpost_control_connections{transport="tls"}'], 16)
            self.assertIn("pid:", self.unix_ctl("status").stdout)
        finally:
            for s in held:
                s.close()
        self.assertGreaterEqual(self.metrics()["outpost_control_tls_refused_total"], refused0 + 24)

    def test_reload_keeps_moves_and_closes_the_listener(self):
        path = self.outpost.config_path
        with open(path) as f:
            original = f.read()
        try:
            # Same settings: the listener stays, a connection made before the reload is served.
            early = self.client_context().wrap_socket(socket.create_connection(("127.0.0.1", TLS_PORT)),
                                                      server_hostname="outpost-control")
            early.do_handshake()
            self.assertIn("configuration reloaded", self.unix_ctl("reload").stdout)
            early.sendall(b"status\n")
            self.assertTrue(h.read_until_close(early, timeout=TIMEOUT + 10).startswith(b"ok\nversion:"))
            early.close()
            self.assertIn("pid:", self.tls_ctl("status").stdout)
            # A new port: the old one refuses, the new one answers.
            with open(path, "w") as f:
                f.write(original.replace(f"127.0.0.1:{TLS_PORT}", f"127.0.0.1:{TLS_PORT + 2}"))
            out = self.unix_ctl("reload").stdout
            self.assertNotIn("restart is needed", out)
            self.assertIn("pid:", self.tls_ctl("status", port=TLS_PORT + 2).stdout)
            r = self.tls_ctl("status", check=False)
            self.assertEqual(r.returncode, 2)
            self.assertIn("connection refused", r.stderr)
            # New certificates from another CA: the old client is refused, a new one served.
            pki2 = os.path.join(self.tmp, "pki2")
            subprocess.run([h.OUTPOST, "ctl", "setup", pki2], check=True, capture_output=True, timeout=60)
            with open(path, "w") as f:
                f.write(original.replace(self.pki, pki2))
            self.unix_ctl("reload")
            r = self.tls_ctl("status", ca=f"{pki2}/ca.pem", check=False)
            self.assertEqual(r.returncode, 2)
            self.assertIn("refused", r.stderr)
            self.assertIn("pid:", self.tls_ctl("status", cert=f"{pki2}/client.pem", key=f"{pki2}/client.key",
                                               ca=f"{pki2}/ca.pem").stdout)
            # No listener.
            with open(path, "w") as f:
                f.write(original.replace(f'tls_listen = ["127.0.0.1:{TLS_PORT}"]', "tls_listen = []"))
            self.unix_ctl("reload")
            r = self.tls_ctl("status", check=False)
            self.assertEqual(r.returncode, 2)
            self.assertIn("connection refused", r.stderr)
        finally:
            with open(path, "w") as f:
                f.write(original)
            self.unix_ctl("reload")
        self.assertIn("pid:", self.tls_ctl("status").stdout)


if __name__ == "__main__":
    h.main()
