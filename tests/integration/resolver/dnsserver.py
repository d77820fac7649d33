"""Helpers for the resolver integration tests: Outpost's DNS server (the dns_server driver) on a
generated config, and dig with its output taken apart."""
import os
import re
import socket
import struct
import subprocess
import tempfile
import unittest
import urllib.request

import dnsfixture
from dnsfixture import encode_name


def dig(server, *args, port=53):
    p = subprocess.run(["dig", "@" + server, "-p", str(port), "+time=4", "+tries=1"] + list(args),
                       capture_output=True, text=True, timeout=30)
    return p.stdout


def status(out):
    for line in out.splitlines():
        if "status:" in line:
            return line.split("status: ")[1].split(",")[0]
    return None


def flags(out):
    for line in out.splitlines():
        if line.startswith(";; flags:"):
            return set(line.split(";")[2].split(":")[1].split())
    return set()


def answers(out):
    """Record lines of every section, split into fields."""
    return [l.split() for l in out.splitlines() if l and not l.startswith(";")]


def section(out, name):
    """Record lines of one section (ANSWER, AUTHORITY, ADDITIONAL), split into fields."""
    rows, inside = [], False
    for line in out.splitlines():
        if line.startswith(";; %s SECTION:" % name):
            inside = True
        elif inside and (not line or line.startswith(";")):
            break
        elif inside:
            rows.append(line.split())
    return rows


def rcode_of(server, name, qtype, tcp=False):
    """Sends one RD=1 question of numeric type QTYPE (no EDNS) and returns the reply's RCODE."""
    query = struct.pack("!HHHHHH", 0x3131, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", qtype, 1)
    if tcp:
        with socket.create_connection((server, 53), timeout=5) as c:
            c.sendall(struct.pack("!H", len(query)) + query)
            data = b""
            while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
                more = c.recv(65535)
                if not more:
                    raise AssertionError("connection closed before the reply")
                data += more
            reply = data[2:]
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(query, (server, 53))
            reply = s.recvfrom(65535)[0]
    assert reply[:2] == query[:2], "reply to another query"
    return reply[3] & 0x0F


class DnsServer:
    """The dns_server driver with one worker listening on LISTEN:53, recursion for 127.0.0.0/8,
    starting from HINTS (a hints file; the fake tree is unsigned: validation off, as
    harness.fake_root_keys says); stop() checks that it exits cleanly."""

    def __init__(self, driver, workdir, name, hints, listen="127.0.0.1", extra=""):
        import harness
        self.listen = listen
        conf = os.path.join(workdir, name + ".toml")
        with open(conf, "w") as f:
            f.write(f"""
[server]
workers = 1
[log]
level = "warn"
[dns]
listen = ["{listen}:53"]
{harness.fake_root_keys(hints)}allow_recursion = ["127.0.0.0/8"]
{extra}
""")
        self.proc = subprocess.Popen([driver, conf], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.proc.kill()
            raise RuntimeError("dns_server did not start: " + line)

    def dig(self, *args):
        return dig(self.listen, *args)

    def stop(self):
        self.proc.terminate()
        code = self.proc.wait(timeout=10)
        self.proc.stdout.close()
        if code != 0:
            raise AssertionError("dns_server exited with %s (a crash or a sanitizer report)" % code)


class OutpostResolver:
    """The outpost binary itself (OUTPOST: its path) as a resolver: one worker, DNS on
    127.0.0.1:DNS_PORT from HINTS with EXTRA [dns] keys, /metrics on 127.0.0.1:ADMIN_PORT, the
    proxy on PROXY_PORT (unused). PROCS is a harness.Processes list that stops it. ANCHOR: a
    signed fake root's trust anchor file (validation on, the default); without, validation off
    (harness.fake_root_keys)."""

    def __init__(self, outpost, procs, workdir, hints, dns_port, admin_port, proxy_port, extra="", anchor=None):
        import harness
        os.makedirs(workdir, exist_ok=True)
        self.dns_port, self.admin_port, self.hints, self.anchor = dns_port, admin_port, hints, anchor
        harness.OUTPOST = outpost
        self.acl = '[acl]\nallow_clients = ["127.0.0.0/8"]\n'
        self.outpost = harness.Outpost(procs, workdir, port=proxy_port, extra_config=self._config(extra), acl=self.acl)
        self.outpost.start()
        harness.wait_port(admin_port, proc=self.outpost.proc)
        harness.wait_port(dns_port, proc=self.outpost.proc)  # TCP; UDP is bound with it

    def _config(self, extra):
        import harness
        return f"""
[server]
workers = 1
[dns]
{harness.fake_root_keys(self.hints, self.anchor)}listen = ["127.0.0.1:{self.dns_port}"]
{extra}
[admin]
enabled = true
listen = ["127.0.0.1:{self.admin_port}"]
"""

    def reload(self, extra, anchor=False):
        """Rewrites the config with EXTRA [dns] keys (and ANCHOR, when given: a trust anchor
        file or None, as in __init__) and waits until SIGHUP has applied it."""
        import signal
        import time
        if anchor is not False:
            self.anchor = anchor
        self.outpost.write_config(self._config(extra), self.acl)
        before = self.outpost.log_text().count("configuration reloaded")
        self.outpost.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while self.outpost.log_text().count("configuration reloaded") == before:
            if time.time() > deadline:
                raise AssertionError("no reload logged")
            time.sleep(0.05)
        time.sleep(0.3)  # the new settings are posted to the workers

    def dig(self, *args):
        return dig("127.0.0.1", *args, port=self.dns_port)

    def metric(self, name, **labels):
        """One sample of the Prometheus text at /metrics (0 when absent)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=10) as r:
            text = r.read().decode()
        want = {k: str(v) for k, v in labels.items()}
        for line in text.splitlines():
            m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)', line)
            if not m or m.group(1) != name:
                continue
            if dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"', m.group(2) or "")) == want:
                return float(m.group(3))
        return 0.0

    def stop(self):
        code = self.outpost.stop()
        if code != 0:
            raise AssertionError("outpost exited with %s (a crash or a sanitizer report); see %s"
                                 % (code, self.outpost.dir))


def ede_codes(out):
    """Extended DNS Error INFO-CODEs in dig's OPT pseudosection ("; EDE: 3 (Stale Answer)")."""
    return [int(c) for c in re.findall(r"^; EDE: (\d+)", out, re.M)]


def ttls(out):
    return [int(r[1]) for r in section(out, "ANSWER")]


class OutpostPairTest(unittest.TestCase):
    """Base for tests that compare two Outposts (the binary in $OUTPOST_BIN) on the NSD fake
    tree with EXTRA_ZONES: `on` with the [dns] keys ON_EXTRA (DNS on port 53, /metrics on
    9145), `off` without (5354, 9146). Scripted servers from make_servers() run alongside.
    Validation is off in both unless on_anchor() names a signed tree's trust anchor file:
    then `on` validates with it and nothing else set (the default)."""

    EXTRA_ZONES = {}
    ON_EXTRA = ""

    @classmethod
    def make_servers(cls):
        """Objects with start() and stop() (scripted servers, peers) run beside the tree."""
        return []

    @classmethod
    def make_hierarchy(cls, workdir):
        return dnsfixture.Hierarchy(workdir, extra_zones=cls.EXTRA_ZONES)

    @classmethod
    def on_extra(cls):
        return cls.ON_EXTRA

    @classmethod
    def on_anchor(cls):
        return None

    @classmethod
    def setUpClass(cls):
        import harness
        if not harness.in_private_netns():
            raise RuntimeError("run through netns_run.sh")
        cls.tmp = tempfile.mkdtemp(prefix=cls.__name__ + "-")
        cls.procs = harness.Processes()
        cls.h = cls.make_hierarchy(os.path.join(cls.tmp, "dns"))
        cls.h.start()
        cls.scripted = cls.make_servers()
        for s in cls.scripted:
            s.start()
        hints, outpost = cls.h.write_hints(), os.environ["OUTPOST_BIN"]
        cls.on = OutpostResolver(outpost, cls.procs, os.path.join(cls.tmp, "on"), hints, 53, 9145, 3128,
                                 extra=cls.on_extra(), anchor=cls.on_anchor())
        cls.off = OutpostResolver(outpost, cls.procs, os.path.join(cls.tmp, "off"), hints, 5354, 9146, 3129)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.on.stop()
            cls.off.stop()
        finally:
            cls.procs.stop_all()
            for s in cls.scripted:
                s.stop()
            cls.h.stop()
            cls.h.cleanup()
