#!/usr/bin/env python3
"""Transparent interception of HTTPS without CONNECT ([proxy] intercept_tls_listen) in the
three network namespaces of test_proxy_transparent (client → router: this test's own
namespace, Outpost, iptables → inet: nginx HTTPS origins on 10.2.0.2 and 10.2.0.3, both with
a certificate for origin.test and splice.test from the test origin CA, different files).

The client has no proxy setting and never trusts anything but what it is given: with the
origin CA only, a fetch succeeds only if it saw the origin's real certificate (spliced); with
the interception CA only, only if Outpost minted one (bumped). Port 443 is REDIRECTed to
Outpost, port 4443 is taken by TPROXY to a second Outpost, port 8444 is redirected but not
an allowed CONNECT port, port 4444 is REDIRECTed to a third Outpost with [auth] on, port 8443
is not redirected at all."""
import hashlib
import os
import socket
import subprocess
import sys
import time

import harness as h
from test_proxy_transparent import (CLIENT, CLIENT_IP, INET, ORIGIN_IP, OTHER_IP, ROUTER_C, client_curl,
                                    make_namespaces, remove_namespaces, run, tproxy_route, wait_for, zone_config)

P = h.PROXY_PORT
TLS_PORT = 3131      # Outpost's intercept_tls_listen (REDIRECT)
TPROXY_PORT = 3132   # the second Outpost's (TPROXY)
ADMIN = 9146
DIRECT = 8443        # served by the origins, not redirected
DENIED_PORT = 8444   # redirected, but not in acl.connect_ports
TPROXY_DPORT = 4443  # taken by TPROXY
AUTH_PORT = 3133     # a third Outpost's, with proxy authentication on
AUTH_DPORT = 4444    # redirected to it


def start_origins(procs, tmp, certs):
    """nginx in the inet namespace: www-real on 10.2.0.2, www-other on 10.2.0.3 (443, 8443,
    8444, 4443), one certificate for origin.test and splice.test, everything cacheable."""
    servers = ""
    for ip, root in ((ORIGIN_IP, "www-real"), (OTHER_IP, "www-other")):
        os.makedirs(os.path.join(tmp, root), exist_ok=True)
        listens = "".join(f"listen {ip}:{port} ssl;\n" for port in (443, DIRECT, DENIED_PORT, TPROXY_DPORT, AUTH_DPORT))
        servers += f"""
        server {{
            {listens}
            ssl_certificate {certs}/origin.pem;
            ssl_certificate_key {certs}/origin.key;
            ssl_protocols TLSv1.2 TLSv1.3;
            root {tmp}/{root};
            expires 1h;
        }}"""
    nginx = h.Nginx(procs, tmp, extra_http=servers, access_format="$server_addr:$server_port $request_uri",
                    netns=INET)
    for ip in (ORIGIN_IP, OTHER_IP):
        h.wait_port(443, host=ip, proc=nginx.proc)
    return nginx


class TransparentTls(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        make_namespaces()
        for port in (443, DENIED_PORT):
            run("iptables", "-t", "nat", "-A", "PREROUTING", "-i", "tp-c", "-p", "tcp", "--dport", str(port),
                "-j", "REDIRECT", "--to-ports", str(TLS_PORT))
        run("iptables", "-t", "nat", "-A", "PREROUTING", "-i", "tp-c", "-p", "tcp", "--dport", str(AUTH_DPORT),
            "-j", "REDIRECT", "--to-ports", str(AUTH_PORT))
        run("iptables", "-t", "mangle", "-A", "PREROUTING", "-i", "tp-c", "-p", "tcp", "--dport", str(TPROXY_DPORT),
            "-j", "TPROXY", "--on-port", str(TPROXY_PORT), "--on-ip", ROUTER_C, "--tproxy-mark", "0x1/0x1")
        tproxy_route()
        c = cls.certs = os.path.join(cls.tmp, "certs")
        os.makedirs(c)
        h.make_test_pki(c)
        h.sign_leaf(c, "origin", "DNS:origin.test,DNS:splice.test")
        start_origins(cls.procs, cls.tmp, c)
        cls.ca = os.path.join(cls.tmp, "intercept-ca.pem")
        cls.ca_key = os.path.join(cls.tmp, "intercept-ca.key")
        subprocess.run([h.OUTPOST, "ca", "init", "--cert", cls.ca, "--key", cls.ca_key], check=True,
                       capture_output=True)
        common = (f'[origin]\nca_file = "{c}/ca.pem"\n'
                  f'[intercept]\nca_certificate = "{cls.ca}"\nca_key = "{cls.ca_key}"\n'
                  'bump = ["origin.test"]\npeek_timeout = 1\n')
        acl = ('[acl]\nallow_clients = ["127.0.0.0/8", "10.1.0.0/24"]\nallow_networks = ["10.2.0.0/24"]\n'
               f'allow_hosts = ["*.test"]\nconnect_ports = [443, {TPROXY_DPORT}, {AUTH_DPORT}]\n')
        dns = zone_config(cls.tmp, ["origin", "splice"])
        cls.outpost = h.Outpost(
            cls.procs, cls.tmp,
            f'[proxy]\nlisten = ["127.0.0.1:{P}"]\nintercept_tls_listen = ["{ROUTER_C}:{TLS_PORT}"]\n' + dns + common +
            f'[admin]\nenabled = true\nlisten = ["127.0.0.1:{ADMIN}"]\n', acl=acl).start()
        tp_dir = os.path.join(cls.tmp, "tproxy")
        os.makedirs(tp_dir)
        cls.tproxy = h.Outpost(
            cls.procs, tp_dir,
            f'[proxy]\nlisten = ["127.0.0.1:{P + 1}"]\nintercept_tls_listen = ["{ROUTER_C}:{TPROXY_PORT}"]\n'
            'intercept_mode = "tproxy"\n' + dns + common, port=P + 1, acl=acl).start()
        auth_dir = os.path.join(cls.tmp, "auth")
        os.makedirs(auth_dir)
        users = os.path.join(auth_dir, "htpasswd")
        subprocess.run(["htpasswd", "-b", "-c", "-B", users, "alice", "secret"], check=True, capture_output=True)
        cls.auth = h.Outpost(
            cls.procs, auth_dir,
            f'[proxy]\nlisten = ["127.0.0.1:{P + 2}"]\nintercept_tls_listen = ["{ROUTER_C}:{AUTH_PORT}"]\n' + dns +
            common + f'[auth]\nbackend = "htpasswd"\nhtpasswd_file = "{users}"\n', port=P + 2, acl=acl).start()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        remove_namespaces()

    # ------------------------------------------------------------------ helpers

    def put(self, which, path, data):
        with open(os.path.join(self.tmp, which, path.lstrip("/")), "wb") as f:
            f.write(data)

    def origin_hits(self, where, path):
        """Requests for PATH nginx served on WHERE ("address:port")."""
        try:
            with open(os.path.join(self.tmp, "nginx-access.log")) as f:
                return sum(1 for l in f if l.split() == [where, path])
        except FileNotFoundError:
            return 0

    def fetch(self, name, ip, path, trust, port=443, *extra):
        """curl https://NAME:PORT/PATH from the client, NAME resolved to IP, trusting only
        TRUST (a CA file): (exit code, body bytes, stderr)."""
        r = subprocess.run(["ip", "netns", "exec", CLIENT, "curl", "-sS", "--noproxy", "*", "-m", "20", "--cacert",
                            trust, "--resolve", f"{name}:{port}:{ip}", *extra, f"https://{name}:{port}{path}"],
                           capture_output=True, timeout=40)
        return r.returncode, r.stdout, r.stderr.decode(errors="replace")

    def metric(self, result):
        return h.metric(self.metrics_text(), "outpost_intercept_connections_total", listener="tls", result=result)

    def metrics_text(self):
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN}/metrics", timeout=10) as r:
            return r.read().decode()

    def log_lines(self, outpost, *texts, n=1):
        return wait_for(f"{n} access-log line(s) with {texts}",
                        lambda: (lambda ls: ls if len(ls) >= n else None)(
                            [l for l in outpost.access_lines(wait_for=0, timeout=0.1) if all(t in l for t in texts)]))

    def client_socket_script(self, port, send, then):
        """Python in the client's namespace: connect to ORIGIN_IP:PORT, send SEND (bytes
        literal text), then THEN (code using s)."""
        return (f"import socket,sys,time\ns=socket.create_connection(('{ORIGIN_IP}',{port}),timeout=15)\n"
                f"s.sendall({send})\n{then}")

    # ------------------------------------------------------------------ tests

    def test_spliced_to_the_original_destination_with_the_origins_certificate(self):
        body = os.urandom(300 * 1024)
        self.put("www-real", "/big.bin", body)
        spliced = self.metric("spliced")
        code, out, err = self.fetch("splice.test", ORIGIN_IP, "/big.bin", f"{self.certs}/ca.pem")
        self.assertEqual(code, 0, err)  # only the origin CA is trusted: the real certificate
        self.assertEqual(hashlib.sha256(out).hexdigest(), hashlib.sha256(body).hexdigest(), "byte-exact")
        line = self.log_lines(self.outpost, f"CONNECT {ORIGIN_IP}:443", "splice:splice.test")[0]
        f = line.split()
        self.assertEqual((f[2], f[3]), (CLIENT_IP, "TCP_TUNNEL/200"), line)
        self.assertEqual(f[8], f"HIER_DIRECT/{ORIGIN_IP}", line)
        self.assertGreaterEqual(int(f[4]), len(body), "the tunnel's bytes are counted")
        self.assertEqual(self.metric("spliced"), spliced + 1)

    def test_bumped_by_the_server_name_then_a_hit(self):
        self.put("www-real", "/page.html", b"the real page\n")
        for _ in range(2):
            code, out, err = self.fetch("origin.test", ORIGIN_IP, "/page.html", self.ca)
            self.assertEqual((code, out), (0, b"the real page\n"), err)  # only the interception CA: minted
        self.assertEqual(self.origin_hits(f"{ORIGIN_IP}:443", "/page.html"), 1, "the second fetch is a hit")
        lines = self.log_lines(self.outpost, "https://origin.test/page.html", n=2)
        self.assertEqual(sorted(l.split()[3].split("/")[0] for l in lines), ["TCP_MEM_HIT", "TCP_MISS"], lines)
        self.assertTrue(any(f"HIER_DIRECT/{ORIGIN_IP}" in l for l in lines), lines)
        self.log_lines(self.outpost, f"CONNECT {ORIGIN_IP}:443", "bump:origin.test", n=2)
        self.assertGreaterEqual(self.metric("bumped"), 2)

    def test_server_name_of_another_host_goes_to_the_original_destination_and_never_into_the_cache(self):
        path = "/lie.html"
        self.put("www-real", path, b"real\n")
        self.put("www-other", path, b"FORGED\n")
        # The client connects to 10.2.0.3 naming origin.test (which is 10.2.0.2): bumped (the
        # rule is on the name), forwarded to 10.2.0.3 (the origin's certificate is valid for
        # the name there too), never stored under https://origin.test/.
        code, out, err = self.fetch("origin.test", OTHER_IP, path, self.ca)
        self.assertEqual((code, out), (0, b"FORGED\n"), err)
        code, out, err = self.fetch("origin.test", ORIGIN_IP, path, self.ca)
        self.assertEqual((code, out), (0, b"real\n"), err)
        code, out, err = self.fetch("origin.test", OTHER_IP, path, self.ca)
        self.assertEqual((code, out), (0, b"FORGED\n"), err)  # not answered from the real copy either
        self.assertEqual(self.origin_hits(f"{OTHER_IP}:443", path), 2)
        self.assertEqual(self.origin_hits(f"{ORIGIN_IP}:443", path), 1)
        wait_for("the unverified Host logged", lambda: "Host is not the intercepted destination" in
                 self.outpost.log_text())
        # Not in the bump list: spliced, still to where the client was going.
        self.put("www-other", "/s.html", b"other's\n")
        code, out, err = self.fetch("splice.test", OTHER_IP, "/s.html", f"{self.certs}/ca.pem")
        self.assertEqual((code, out), (0, b"other's\n"), err)
        self.log_lines(self.outpost, f"CONNECT {OTHER_IP}:443", "splice:splice.test", f"HIER_DIRECT/{OTHER_IP}")

    def test_plain_text_to_the_tls_port_is_closed(self):
        not_tls = self.metric("not_tls")
        script = self.client_socket_script(443, "b'GET / HTTP/1.1\\r\\nHost: origin.test\\r\\n\\r\\n'",
                                           "print(repr(s.recv(4096)))")
        r = run("ip", "netns", "exec", CLIENT, sys.executable, "-c", script, timeout=30)
        self.assertEqual(r.stdout.strip(), "b''", "closed without an answer (no HTTP where TLS was expected)")
        self.assertEqual(self.metric("not_tls"), not_tls + 1)
        self.log_lines(self.outpost, "NONE_NONE/000", f"CONNECT {ORIGIN_IP}:443", "not-tls")
        self.assertIsNone(self.outpost.proc.poll())

    def test_stalled_hello_is_spliced_after_the_peek_timeout(self):
        spliced = self.metric("spliced")
        # Half a ClientHello record header, then nothing: the peek gives up after peek_timeout
        # (1 s) and splices to the original destination with what it has.
        script = self.client_socket_script(
            443, "b'\\x16\\x03\\x01\\x02'",
            "print('sent', flush=True)\nsys.stdin.readline()\ns.close()")
        p = subprocess.Popen(["ip", "netns", "exec", CLIENT, sys.executable, "-c", script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(p.stdout.readline().strip(), "sent")
            # Others are served meanwhile.
            self.put("www-real", "/meanwhile.html", b"meanwhile\n")
            code, out, err = self.fetch("splice.test", ORIGIN_IP, "/meanwhile.html", f"{self.certs}/ca.pem")
            self.assertEqual((code, out), (0, b"meanwhile\n"), err)
            wait_for("the stalled client spliced", lambda: self.metric("spliced") >= spliced + 2)
        finally:
            p.stdin.write("\n")
            p.stdin.close()
            p.wait(timeout=20)
            p.stdout.close()
        self.log_lines(self.outpost, f"CONNECT {ORIGIN_IP}:443", "splice:-", f"HIER_DIRECT/{ORIGIN_IP}")

    def test_port_not_redirected_passes_untouched(self):
        self.put("www-real", "/direct.html", b"direct\n")
        code, out, err = self.fetch("origin.test", ORIGIN_IP, "/direct.html", f"{self.certs}/ca.pem", DIRECT)
        self.assertEqual((code, out), (0, b"direct\n"), err)  # the origin's own certificate
        time.sleep(1.2)  # the access log is flushed every second
        self.assertFalse([l for l in self.outpost.access_lines(wait_for=0, timeout=0.1) if f":{DIRECT}" in l])

    def test_port_outside_the_connect_rules_is_closed(self):
        denied = self.metric("denied")
        code, _, _ = self.fetch("splice.test", ORIGIN_IP, "/", f"{self.certs}/ca.pem", DENIED_PORT)
        self.assertNotEqual(code, 0)
        self.assertEqual(self.metric("denied"), denied + 1)
        self.log_lines(self.outpost, "TCP_DENIED/403 0", f"CONNECT {ORIGIN_IP}:{DENIED_PORT}")

    def test_with_proxy_authentication_on_it_is_closed(self):
        # Nobody inside TLS to a server it thinks it reached can answer a 407.
        self.put("www-real", "/auth.html", b"not for you\n")
        for name, trust in (("splice.test", f"{self.certs}/ca.pem"), ("origin.test", self.ca)):
            code, out, _ = self.fetch(name, ORIGIN_IP, "/auth.html", trust, AUTH_DPORT)
            self.assertNotEqual(code, 0, out)
        self.log_lines(self.auth, "TCP_DENIED/403 0", f"CONNECT {ORIGIN_IP}:{AUTH_DPORT}", n=2)
        self.assertEqual(self.origin_hits(f"{ORIGIN_IP}:{AUTH_DPORT}", "/auth.html"), 0)

    def test_direct_connection_to_the_listener_is_refused(self):
        refused = self.metric("refused")
        code, _, _ = self.fetch("splice.test", ROUTER_C, "/", f"{self.certs}/ca.pem", TLS_PORT)
        self.assertNotEqual(code, 0, "not redirected: nothing to forward to (it would loop)")
        self.assertEqual(self.metric("refused"), refused + 1)

    def test_tproxy(self):
        self.put("www-real", "/tp.html", b"through tproxy\n")
        for _ in range(2):
            code, out, err = self.fetch("origin.test", ORIGIN_IP, "/tp.html", self.ca, TPROXY_DPORT)
            self.assertEqual((code, out), (0, b"through tproxy\n"), err)
        self.assertEqual(self.origin_hits(f"{ORIGIN_IP}:{TPROXY_DPORT}", "/tp.html"), 1, "the second fetch is a hit")
        self.log_lines(self.tproxy, f"CONNECT {ORIGIN_IP}:{TPROXY_DPORT}", "bump:origin.test", n=2)
        code, out, err = self.fetch("splice.test", ORIGIN_IP, "/tp.html", f"{self.certs}/ca.pem", TPROXY_DPORT)
        self.assertEqual((code, out), (0, b"through tproxy\n"), err)
        self.log_lines(self.tproxy, f"CONNECT {ORIGIN_IP}:{TPROXY_DPORT}", "splice:splice.test")


if __name__ == "__main__":
    h.main()
