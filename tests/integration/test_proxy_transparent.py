#!/usr/bin/env python3
"""Transparent interception ([proxy] intercept_listen) in three network namespaces:

    client (10.1.0.2) ──veth── router: this test's own namespace, Outpost, and
                               iptables REDIRECT of the client's port-80 traffic to 3129
                        ──veth── inet (10.2.0.2 origin, 10.2.0.3 another origin)

The client knows nothing of the proxy: it connects to the origin's address, the router's
kernel hands the connection to Outpost, which finds the original destination
(SO_ORIGINAL_DST), forwards there, caches by Host only when Host resolves to that
destination, and logs it. Traffic to other ports is routed untouched. Port 81 is taken by
TPROXY instead (iptables mangle TPROXY, a second Outpost with intercept_mode = "tproxy"). The namespaces and
the /run/netns they are named in exist only inside this test's private namespaces."""
import http.client
import json
import os
import socket
import subprocess
import sys
import time

import harness as h

P = h.PROXY_PORT
IP_PORT = 3129
TPROXY_PORT = 3130
ADMIN = 9145
CLIENT, INET = "op-tp-client", "op-tp-inet"
ROUTER_C, CLIENT_IP = "10.1.0.1", "10.1.0.2"
ROUTER_I, ORIGIN_IP, OTHER_IP = "10.2.0.1", "10.2.0.2", "10.2.0.3"


def run(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kw)


def client_curl(*args, timeout=20):
    """curl in the client's namespace (no proxy setting: it talks to the origin, it thinks)."""
    r = run("ip", "netns", "exec", CLIENT, "curl", "-s", "-S", "--noproxy", "*", "-m", str(timeout), *args,
            check=False, timeout=timeout + 10)
    return r


def client_get(url, *extra):
    """(status, headers dict, body) of a GET from the client."""
    r = client_curl("-D", "/dev/stderr", "-o", "/dev/stdout", *extra, url)
    if r.returncode != 0:
        return None, {}, r.stderr
    head = r.stderr.replace("\r\n", "\n").split("\n\n")[0].split("\n")
    status = int(head[0].split()[1])
    fields = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        fields[k.strip().lower()] = v.strip()
    return status, fields, r.stdout


class OriginAt:
    """The scriptable test origin (origin.py) listening in the inet namespace on addr:port."""

    def __init__(self, procs, addr, port):
        self.addr, self.port = addr, port
        self.proc = procs.start(["ip", "netns", "exec", INET, sys.executable, os.path.join(h.HERE, "origin.py"),
                                 str(port), addr], stdout=subprocess.DEVNULL)
        h.wait_port(port, host=addr, proc=self.proc)  # routed from the router's namespace

    def _request(self, method, path, body=None):
        c = http.client.HTTPConnection(self.addr, self.port, timeout=10)
        c.request(method, path, body=body, headers={"Host": "x"})
        data = c.getresponse().read()
        c.close()
        return data

    def script(self, path, **spec):
        spec["path"] = path
        self._request("POST", "/__script", json.dumps(spec).encode())

    def count(self, path):
        return json.loads(self._request("GET", "/__stats"))["requests"].get(path, 0)

    def last_headers(self, path):
        stats = json.loads(self._request("GET", "/__stats"))
        return {k.lower(): v for k, v in stats["last_headers"].get(path, [])}


def make_namespaces():
    """The client and inet namespaces, routed through this test's own (the router), named
    only inside this test's mount namespace."""
    os.makedirs("/run/netns", exist_ok=True)
    run("mount", "-t", "tmpfs", "outpost-test-netns", "/run/netns")
    for ns, peer, mine, theirs, addrs in ((CLIENT, "tp-c", ROUTER_C, "c0", [CLIENT_IP]),
                                           (INET, "tp-i", ROUTER_I, "i0", [ORIGIN_IP, OTHER_IP])):
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", peer, "type", "veth", "peer", "name", theirs, "netns", ns)
        run("ip", "addr", "add", f"{mine}/24", "dev", peer)
        run("ip", "link", "set", peer, "up")
        for a in addrs:
            run("ip", "-n", ns, "addr", "add", f"{a}/24", "dev", theirs)
        run("ip", "-n", ns, "link", "set", theirs, "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", ns, "route", "add", "default", "via", mine)
    run("sysctl", "-qw", "net.ipv4.ip_forward=1")


def remove_namespaces():
    for ns in (CLIENT, INET):
        run("ip", "netns", "del", ns, check=False)
    run("umount", "/run/netns", check=False)


def tproxy_route():
    """Packets TPROXY marks (0x1) are delivered locally (to the IP_TRANSPARENT listener)."""
    run("ip", "rule", "add", "fwmark", "1", "lookup", "100")
    run("ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100")


def zone_config(tmp, names):
    """A [dns] section: the fake root, and NAME.test -> ORIGIN_IP for each of `names`."""
    zone = os.path.join(tmp, "test.zone")
    with open(zone, "w") as f:
        f.write("$ORIGIN test.\n@ 3600 IN SOA ns admin 1 3600 600 86400 60\n@ 3600 IN NS ns\n"
                f"ns 3600 IN A {ORIGIN_IP}\n" + "".join(f"{n} 3600 IN A {ORIGIN_IP}\n" for n in names))
    hints = h.write_fake_root_hints(os.path.join(tmp, "fake-root.hints"))
    return "[dns]\n" + h.fake_root_keys(hints) + f'listen = []\nlocal_zones = [{{ name = "test", file = "{zone}" }}]\n'


def wait_for(what, pred, timeout=10):
    """Asks PRED() again until it is true (then returns it) or TIMEOUT seconds pass (fails)."""
    deadline = time.time() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.2)


class TransparentInterception(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        make_namespaces()
        run("iptables", "-t", "nat", "-A", "PREROUTING", "-i", "tp-c", "-p", "tcp", "--dport", "80",
            "-j", "REDIRECT", "--to-ports", str(IP_PORT))
        # Port 81 goes by TPROXY to a second Outpost (intercept_mode = "tproxy"): the packets
        # keep their destination and reach its IP_TRANSPARENT listener through a local route.
        run("iptables", "-t", "mangle", "-A", "PREROUTING", "-i", "tp-c", "-p", "tcp", "--dport", "81",
            "-j", "TPROXY", "--on-port", str(TPROXY_PORT), "--on-ip", ROUTER_C, "--tproxy-mark", "0x1/0x1")
        tproxy_route()

        cls.origin = OriginAt(cls.procs, ORIGIN_IP, 80)
        cls.other = OriginAt(cls.procs, OTHER_IP, 80)        # a host that is not origin.test
        cls.side = OriginAt(cls.procs, ORIGIN_IP, 8080)      # a port that is not redirected
        cls.tp_origin = OriginAt(cls.procs, ORIGIN_IP, 81)   # reached through TPROXY

        dns = zone_config(cls.tmp, ["origin"])
        extra = (f'[proxy]\nlisten = ["127.0.0.1:{P}"]\nintercept_listen = ["{ROUTER_C}:{IP_PORT}"]\n' + dns +
                 f'[admin]\nenabled = true\nlisten = ["127.0.0.1:{ADMIN}"]\n')
        acl = ('[acl]\nallow_clients = ["127.0.0.0/8", "10.1.0.0/24"]\nallow_networks = ["10.2.0.0/24"]\n'
               'allow_hosts = ["*.test"]\n')
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra, acl=acl).start()
        tp_dir = os.path.join(cls.tmp, "tproxy")
        os.makedirs(tp_dir)
        tp_extra = (f'[proxy]\nlisten = ["127.0.0.1:{P + 1}"]\nintercept_listen = ["{ROUTER_C}:{TPROXY_PORT}"]\n'
                    'intercept_mode = "tproxy"\n' + dns)
        cls.tproxy = h.Outpost(cls.procs, tp_dir, tp_extra, port=P + 1, acl=acl).start()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        remove_namespaces()

    def access_lines_with(self, text, n=1):
        deadline = time.time() + 10
        found = []
        while time.time() < deadline:
            found = [l for l in self.outpost.access_lines(wait_for=0, timeout=0.1) if text in l]
            if len(found) >= n:
                break
            time.sleep(0.2)
        return found

    def metric(self, name, label):
        return sum(v for k, v in h.scrape_metrics(ADMIN).items() if k.startswith(name + "{") and label in k)

    def test_page_then_hit_by_name(self):
        path = "/script/by-name"
        self.origin.script(path, body="the real page\n", headers=[["Cache-Control", "max-age=600"]])
        for _ in range(2):
            status, fields, body = client_get(f"http://origin.test{path}", "--resolve", f"origin.test:80:{ORIGIN_IP}")
            self.assertEqual((status, body), (200, "the real page\n"), fields)
        self.assertEqual(self.origin.count(path), 1, "the second fetch must be a hit")
        self.assertIn("via", fields, fields)
        lines = self.access_lines_with(f"http://origin.test{path}", 2)
        self.assertEqual(len(lines), 2, lines)
        # (Each worker flushes its own access-log buffer: the lines may come in either order.)
        miss = [l for l in lines if "TCP_MISS/200" in l]
        self.assertEqual(len(miss), 1, lines)
        self.assertIn(f"HIER_DIRECT/{ORIGIN_IP}", miss[0], "the log names the original destination")
        self.assertEqual(miss[0].split()[2], CLIENT_IP, miss[0])
        self.assertEqual(len([l for l in lines if "HIT/200" in l]), 1, lines)

    def test_ip_literal_host(self):
        path = "/script/literal"
        self.origin.script(path, body="by address\n", headers=[["Cache-Control", "max-age=600"]])
        for _ in range(2):
            status, _, body = client_get(f"http://{ORIGIN_IP}{path}")
            self.assertEqual((status, body), (200, "by address\n"))
        self.assertEqual(self.origin.count(path), 1)

    def test_lying_host_is_forwarded_to_its_destination_and_never_cached(self):
        path = "/script/lie"
        self.origin.script(path, body="real\n", headers=[["Cache-Control", "max-age=600"]])
        self.other.script(path, body="FORGED\n", headers=[["Cache-Control", "max-age=600"]])
        unverified = self.metric("outpost_intercept_host_checks_total", 'result="unverified"')
        # The client connects to 10.2.0.3 but says Host: origin.test (which is 10.2.0.2).
        status, _, body = client_get(f"http://origin.test{path}", "--resolve", f"origin.test:80:{OTHER_IP}")
        self.assertEqual((status, body), (200, "FORGED\n"), "it goes where the client was going")
        # The real origin.test is not served the forged bytes from the cache...
        status, _, body = client_get(f"http://origin.test{path}", "--resolve", f"origin.test:80:{ORIGIN_IP}")
        self.assertEqual((status, body), (200, "real\n"))
        # ...and a lying request is not answered from the cache either.
        status, _, body = client_get(f"http://origin.test{path}", "--resolve", f"origin.test:80:{OTHER_IP}")
        self.assertEqual((status, body), (200, "FORGED\n"))
        self.assertEqual(self.other.count(path), 2)
        self.assertEqual(self.origin.count(path), 1)
        self.assertEqual(self.metric("outpost_intercept_host_checks_total", 'result="unverified"'), unverified + 2)
        deadline = time.time() + 10
        while "Host is not the intercepted destination" not in self.outpost.log_text() and time.time() < deadline:
            time.sleep(0.2)
        self.assertIn("Host is not the intercepted destination", self.outpost.log_text())

    def test_unsafe_request_with_lying_host_does_not_invalidate(self):
        path = "/script/keep"
        self.origin.script(path, body="kept\n", headers=[["Cache-Control", "max-age=600"]])
        self.other.script(path, body="posted\n")
        resolve_real = ["--resolve", f"origin.test:80:{ORIGIN_IP}"]
        self.assertEqual(client_get(f"http://origin.test{path}", *resolve_real)[2], "kept\n")
        r = client_curl("-X", "POST", "-d", "x", "--resolve", f"origin.test:80:{OTHER_IP}", f"http://origin.test{path}")
        self.assertEqual(r.stdout, "posted\n", r.stderr)
        self.assertEqual(client_get(f"http://origin.test{path}", *resolve_real)[2], "kept\n")
        self.assertEqual(self.origin.count(path), 1, "the lying POST must not have invalidated origin.test's copy")

    def test_port_not_redirected_passes_untouched(self):
        path = "/script/side"
        self.side.script(path, body="side\n")
        status, _, body = client_get(f"http://{ORIGIN_IP}:8080{path}")
        self.assertEqual((status, body), (200, "side\n"))
        self.assertNotIn("via", self.side.last_headers(path), "no proxy on the way")
        time.sleep(1.2)  # the access log is flushed every second
        self.assertFalse([l for l in self.outpost.access_lines(wait_for=0, timeout=0.1) if ":8080" in l])

    def test_direct_connection_to_intercept_port_is_refused(self):
        refused = self.metric("outpost_intercept_connections_total", 'result="refused"')
        r = client_curl(f"http://{ROUTER_C}:{IP_PORT}/", timeout=5)
        self.assertNotEqual(r.returncode, 0, "not redirected: nothing to forward to (it would loop)")
        self.assertEqual(self.metric("outpost_intercept_connections_total", 'result="refused"'), refused + 1)

    def test_tproxy(self):
        path = "/script/tproxy"
        self.tp_origin.script(path, body="through tproxy\n", headers=[["Cache-Control", "max-age=600"]])
        for _ in range(2):
            status, _, body = client_get(f"http://origin.test:81{path}", "--resolve", f"origin.test:81:{ORIGIN_IP}")
            self.assertEqual((status, body), (200, "through tproxy\n"))
        self.assertEqual(self.tp_origin.count(path), 1, "the second fetch must be a hit")
        lines = [l for l in self.tproxy.access_lines(wait_for=2) if path in l]
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(any(f"HIER_DIRECT/{ORIGIN_IP}" in l for l in lines), lines)
        # Dialled directly, the listener has no other destination to offer: refused.
        self.assertNotEqual(client_curl(f"http://{ROUTER_C}:{TPROXY_PORT}/", timeout=5).returncode, 0)
        deadline = time.time() + 10
        while "not redirected" not in self.tproxy.log_text() and time.time() < deadline:
            time.sleep(0.2)
        self.assertIn("not redirected", self.tproxy.log_text())

    def test_http10_without_host_goes_to_the_destination(self):
        path = "/script/nohost"
        self.origin.script(path, body="old client\n")
        script = (f"import socket;s=socket.create_connection(('{ORIGIN_IP}',80),timeout=10);"
                  f"s.sendall(b'GET {path} HTTP/1.0\\r\\n\\r\\n');d=b''\n"
                  "while True:\n c=s.recv(65536)\n if not c: break\n d+=c\nprint(d.decode())")
        r = run("ip", "netns", "exec", CLIENT, sys.executable, "-c", script, timeout=20)
        self.assertIn(" 200 ", r.stdout.splitlines()[0])
        self.assertTrue(r.stdout.rstrip().endswith("old client"), r.stdout)
        self.assertTrue(self.access_lines_with(f"http://{ORIGIN_IP}{path}"))

    def test_hostile_client_gets_a_protocol_error(self):
        script = (f"import socket;s=socket.create_connection(('{ORIGIN_IP}',80),timeout=10);"
                  "s.sendall(b'\\x16\\x03\\x01 not http at all\\r\\n\\r\\n');print(s.recv(4096).decode('latin1'))")
        r = run("ip", "netns", "exec", CLIENT, sys.executable, "-c", script, timeout=20)
        self.assertIn("400", r.stdout.splitlines()[0] if r.stdout else "", r.stdout)
        # CONNECT makes no sense to a client that thinks it talks to the origin.
        script = (f"import socket;s=socket.create_connection(('{ORIGIN_IP}',80),timeout=10);"
                  "s.sendall(b'CONNECT 10.2.0.2:443 HTTP/1.1\\r\\nHost: 10.2.0.2:443\\r\\n\\r\\n');"
                  "print(s.recv(4096).decode('latin1'))")
        r = run("ip", "netns", "exec", CLIENT, sys.executable, "-c", script, timeout=20)
        self.assertIn(" 405 ", r.stdout.splitlines()[0] if r.stdout else "", r.stdout)
        self.assertEqual(self.outpost.proc.poll(), None)


if __name__ == "__main__":
    h.main()
