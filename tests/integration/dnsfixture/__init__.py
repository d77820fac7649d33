"""A fake DNS hierarchy for resolver integration tests (Python 3 stdlib only).

Real NSD instances on 127.0.0.x, one per level, plus two small Python helpers: a counting UDP
relay (so tests can see how often the resolver went upstream) and a spoofing server. Runs as
root inside a private network namespace (tests/integration/netns_run.sh); never touches a
public address.

Layout (all servers listen on port 53):
  127.0.0.2   root "."                 delegates test. and example. (with glue)
  127.0.0.3   TLD "test."              a.test/big.test/slow.test (glue), count.test, spoof.test
  127.0.0.4   TLD "example."           b.example -> ns.a.test (out of bailiwick, no glue)
  127.0.0.5   a.test, big.test, slow.test
  127.0.0.6   b.example
  127.0.0.7   silent: a socket that swallows every query (ns1.slow.test, listed first)
  127.0.0.8   counting relay -> 127.0.0.9 (NSD: count.test)
  127.0.0.10  spoof.test: answers each query first with a wrong ID, then from 127.0.0.11
              (wrong address), then correctly
Names of interest: see ZONES below (www.a.test, chain.a.test -> www.b.example -> final.a.test,
short.count.test TTL 2, nx.count.test NXDOMAIN with SOA minimum 2, big.test TXT > 1232 bytes,
www.slow.test behind the silent server, www.spoof.test).

Tests that need a server to misbehave on purpose add zones or records with
Hierarchy(extra_zones=...) and run a ScriptedServer (below) on an address of their own.
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

ROOT_ADDR = "127.0.0.2"
SILENT_ADDR = "127.0.0.7"
RELAY_ADDR = "127.0.0.8"
SPOOF_ADDR = "127.0.0.10"
SPOOF_WRONG_SOURCE = "127.0.0.11"
GOOD_SPOOF_ANSWER = "192.0.2.10"
BAD_SPOOF_ANSWER = "6.6.6.6"

SOA = "{z} 3600 IN SOA ns1.{z} admin.{z} 1 3600 600 86400 {minimum}\n"

ZONES = {
    # server address -> {zone name: zone file body}
    "127.0.0.2": {".": SOA.format(z=".", minimum=3).replace("ns1..", "ns.root.").replace("admin..", "admin.root.") + """
. 86400 IN NS ns.root.
ns.root. 86400 IN A 127.0.0.2
test. 86400 IN NS ns1.test.
ns1.test. 86400 IN A 127.0.0.3
example. 86400 IN NS ns1.example.
ns1.example. 86400 IN A 127.0.0.4
"""},
    "127.0.0.3": {"test.": SOA.format(z="test.", minimum=3) + """
test. 86400 IN NS ns1.test.
ns1.test. 86400 IN A 127.0.0.3
a.test. 3600 IN NS ns1.a.test.
ns1.a.test. 3600 IN A 127.0.0.5
big.test. 3600 IN NS ns1.big.test.
ns1.big.test. 3600 IN A 127.0.0.5
slow.test. 3600 IN NS ns1.slow.test.
slow.test. 3600 IN NS ns2.slow.test.
ns1.slow.test. 3600 IN A 127.0.0.7
ns2.slow.test. 3600 IN A 127.0.0.5
count.test. 3600 IN NS ns.count.test.
ns.count.test. 3600 IN A 127.0.0.8
spoof.test. 3600 IN NS ns.spoof.test.
ns.spoof.test. 3600 IN A 127.0.0.10
"""},
    "127.0.0.4": {"example.": SOA.format(z="example.", minimum=3) + """
example. 86400 IN NS ns1.example.
ns1.example. 86400 IN A 127.0.0.4
b.example. 3600 IN NS ns.a.test.
"""},
    "127.0.0.5": {
        "a.test.": SOA.format(z="a.test.", minimum=2) + """
a.test. 300 IN NS ns1.a.test.
ns1.a.test. 300 IN A 127.0.0.5
ns.a.test. 300 IN A 127.0.0.6
www.a.test. 300 IN A 192.0.2.1
www.a.test. 300 IN AAAA 2001:db8::1
chain.a.test. 300 IN CNAME www.b.example.
final.a.test. 300 IN A 192.0.2.3
origin.a.test. 300 IN A 127.0.0.1
loop1.a.test. 300 IN CNAME loop2.a.test.
dangling.a.test. 300 IN CNAME missing.a.test.
loop2.a.test. 300 IN CNAME loop1.a.test.
mail.a.test. 300 IN A 192.0.2.25
a.test. 300 IN MX 10 mail.a.test.
txt.a.test. 300 IN TXT "hello world"
""",
        "big.test.": SOA.format(z="big.test.", minimum=3) + "big.test. 300 IN NS ns1.big.test.\n"
        + "".join(f'big.test. 300 IN TXT "{i:02d}{"x" * 180}"\n' for i in range(10)),
        "slow.test.": SOA.format(z="slow.test.", minimum=3) + """
slow.test. 300 IN NS ns1.slow.test.
slow.test. 300 IN NS ns2.slow.test.
www.slow.test. 300 IN A 192.0.2.7
""",
    },
    "127.0.0.6": {"b.example.": SOA.format(z="b.example.", minimum=3) + """
b.example. 300 IN NS ns.a.test.
www.b.example. 300 IN CNAME final.a.test.
host.b.example. 300 IN A 192.0.2.4
"""},
    "127.0.0.9": {"count.test.": SOA.format(z="count.test.", minimum=2) + """
count.test. 300 IN NS ns.count.test.
short.count.test. 2 IN A 192.0.2.8
long.count.test. 300 IN A 192.0.2.9
"""},
}

NSD_CONF = """server:
  ip-address: {addr}
  port: 53
  do-ip6: no
  database: ""
  zonelistfile: "{dir}/zone.list"
  pidfile: "{dir}/nsd.pid"
  xfrdfile: "{dir}/xfrd.state"
  xfrdir: "{dir}"
  zonesdir: "{dir}"
  logfile: "{dir}/nsd.log"
  username: ""
  chroot: ""
  server-count: 1
  verbosity: 1
  hide-version: yes
  rrl-ratelimit: 0
  xfrd-reload-timeout: 1
remote-control:
  control-enable: no
"""


def hints_text():
    """A root-hints file naming the fake root (what the resolver's `hints` option reads)."""
    return ". 3600000 IN NS ns.root.\nns.root. 3600000 IN A %s\n" % ROOT_ADDR


def _qname(packet):
    """Question name (lower case, with final dot) and type of a DNS packet, or (None, None)."""
    try:
        i, labels = 12, []
        while packet[i]:
            n = packet[i]
            labels.append(packet[i + 1:i + 1 + n].decode("ascii", "replace").lower())
            i += 1 + n
        qtype = struct.unpack("!H", packet[i + 1:i + 3])[0]
        return ".".join(labels) + ".", qtype
    except (IndexError, struct.error):
        return None, None


def _answer_a(query, address, id_=None):
    """A minimal answer to `query` with one A record (AA set)."""
    qid = struct.unpack("!H", query[:2])[0] if id_ is None else id_
    i = 12
    while query[i]:
        i += 1 + query[i]
    question = query[12:i + 5]
    head = struct.pack("!HHHHHH", qid, 0x8400 | (query[2] & 1) << 8, 1, 1, 0, 0)
    rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(address)
    return head + question + rr


class _Thread(threading.Thread):
    def __init__(self, sockets):
        super().__init__(daemon=True)
        self.sockets = sockets
        self.stopping = False
        self.counts = {}  # (name, type) -> queries, for the servers that count
        self.lock = threading.Lock()

    def count(self, name, qtype=1):
        name = name.lower().rstrip(".") + "."
        with self.lock:
            return self.counts.get((name, qtype), 0)

    def _note(self, key):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def stop(self):
        """Closes the sockets and waits for the thread: shutdown() first wakes a thread blocked
        in recvfrom or accept (a plain close() would leave the port bound until the next
        datagram came, so a new fixture could not bind it)."""
        self.stopping = True
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except (OSError, AttributeError):  # not connected; or a test's socket-like wrapper
                pass
            s.close()
        if self.is_alive() and self is not threading.current_thread():
            self.join(2)


def _udp_and_tcp(addr):
    """A UDP socket and a listening TCP socket on ADDR:53."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((addr, 53))
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((addr, 53))
    t.listen(16)
    return [u, t]


class SilentServer(_Thread):
    """Reads queries on UDP and accepts TCP connections, never answers."""

    def __init__(self, addr):
        super().__init__(_udp_and_tcp(addr))
        self.received = 0

    def run(self):
        u = self.sockets[0]
        while not self.stopping:
            try:
                u.recvfrom(65535)
            except OSError:
                return
            if self.stopping:
                return
            self.received += 1


class CountingRelay(_Thread):
    """UDP relay that counts queries per (name, type) before passing them to a real server."""

    def __init__(self, addr, upstream):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((addr, 53))
        super().__init__([s])
        self.upstream = upstream

    def run(self):
        s = self.sockets[0]
        while not self.stopping:
            try:
                data, peer = s.recvfrom(65535)
            except OSError:
                return
            if self.stopping:
                return
            self._note(_qname(data))
            up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            up.settimeout(2)
            try:
                up.sendto(data, (self.upstream, 53))
                reply, _ = up.recvfrom(65535)
                s.sendto(reply, peer)
            except OSError:
                pass
            finally:
                up.close()


class SpoofingServer(_Thread):
    """Authoritative for spoof.test: before each real answer it sends a forged one with a wrong
    ID and another with the right ID from a wrong source address, both naming BAD_SPOOF_ANSWER."""

    def __init__(self, addr, wrong_source):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((addr, 53))
        w = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        w.bind((wrong_source, 0))
        super().__init__([s, w])
        self.queries = 0

    def run(self):
        s, w = self.sockets
        while not self.stopping:
            try:
                data, peer = s.recvfrom(65535)
            except OSError:
                return
            if self.stopping:
                return
            if len(data) < 17:
                continue
            self.queries += 1
            qid = struct.unpack("!H", data[:2])[0]
            try:
                s.sendto(_answer_a(data, BAD_SPOOF_ANSWER, id_=qid ^ 0x5A5A), peer)
                w.sendto(_answer_a(data, BAD_SPOOF_ANSWER), peer)
                time.sleep(0.01)
                s.sendto(_answer_a(data, GOOD_SPOOF_ANSWER), peer)
            except (OSError, IndexError):
                pass


def wait_udp_answer(addr, port, query, timeout=10, reply_timeout=0.2):
    """Sends QUERY (a DNS message) to ADDR:PORT until a reply with its ID comes back or TIMEOUT
    seconds pass; True when a server answered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(reply_timeout)
        try:
            s.sendto(query, (addr, port))
            if s.recvfrom(65535)[0][:2] == query[:2]:
                return True
        except OSError:
            time.sleep(0.05)
        finally:
            s.close()
    return False


# ---- scripted servers: small authoritative servers that misbehave on purpose ----------------

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28, "DNAME": 39, "OPT": 41, "DS": 43,
         "IXFR": 251, "AXFR": 252, "ANY": 255}


def encode_name(name):
    out = b""
    for label in name.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def rr(name, rtype, ttl, rdata):
    """One resource record in wire form. RDATA: an address for A, a name for NS/CNAME/DNAME, a
    tuple (mname, rname, minimum) for SOA, else raw bytes."""
    t = TYPES[rtype] if isinstance(rtype, str) else rtype
    if t == 1:
        data = socket.inet_aton(rdata)
    elif t in (2, 5, 39):
        data = encode_name(rdata)
    elif t == 6:
        mname, rname, minimum = rdata
        data = encode_name(mname) + encode_name(rname) + struct.pack("!IIIII", 1, 3600, 600, 86400, minimum)
    else:
        data = rdata
    return encode_name(name) + struct.pack("!HHIH", t, 1, ttl, len(data)) + data


class Query:
    """The parts of a received query a scripted server needs."""

    def __init__(self, packet):
        self.packet = packet
        self.id = struct.unpack("!H", packet[:2])[0]
        self.rd = bool(packet[2] & 1)
        self.name, self.type = _qname(packet)
        i = 12
        while packet[i]:
            i += 1 + packet[i]
        self.question = packet[12:i + 5]

    def reply(self, answer=(), authority=(), additional=(), aa=True, ra=False, rcode=0):
        flags = 0x8000 | (0x0400 if aa else 0) | (0x0100 if self.rd else 0) | (0x0080 if ra else 0) | rcode
        head = struct.pack("!HHHHHH", self.id, flags, 1, len(answer), len(authority), len(additional))
        return head + self.question + b"".join(answer) + b"".join(authority) + b"".join(additional)


def zone_reply(q, zone, existing=()):
    """What a scripted server for ZONE (its one server named ns.ZONE) answers to the questions
    its handler does not script: the NS set at the apex, NODATA for the apex, ns.ZONE and the
    names in EXISTING, NXDOMAIN for anything else; authoritative, SOA in the authority."""
    soa = rr(zone, "SOA", 300, ("ns." + zone, "admin." + zone, 60))
    if q.name == zone and q.type == TYPES["NS"]:
        return q.reply(answer=[rr(zone, "NS", 300, "ns." + zone)])
    if q.name in (zone, "ns." + zone) + tuple(existing):
        return q.reply(authority=[soa])
    return q.reply(authority=[soa], rcode=3)


class ScriptedServer(_Thread):
    """UDP and TCP on ADDR:53; HANDLER(Query) returns the reply bytes (None: no reply). Counts
    queries per (name, type) like CountingRelay."""

    def __init__(self, addr, handler):
        super().__init__(_udp_and_tcp(addr))
        self.handler = handler

    def _answer(self, data):
        if len(data) < 17 or data[2] & 0x80:
            return None
        try:
            q = Query(data)
        except (IndexError, struct.error):
            return None
        self._note((q.name, q.type))
        return self.handler(q)

    def run(self):
        threading.Thread(target=self._tcp, daemon=True).start()
        u = self.sockets[0]
        while not self.stopping:
            try:
                data, peer = u.recvfrom(65535)
            except OSError:
                return
            if self.stopping:
                return
            out = self._answer(data)
            if out:
                u.sendto(out, peer)

    def _tcp(self):
        t = self.sockets[1]
        while not self.stopping:
            try:
                c, _ = t.accept()
            except OSError:
                return
            with c:
                c.settimeout(2)
                try:
                    n = struct.unpack("!H", c.recv(2))[0]
                    data = b""
                    while len(data) < n:
                        more = c.recv(n - len(data))
                        if not more:
                            break
                        data += more
                    out = self._answer(data)
                    if out:
                        c.sendall(struct.pack("!H", len(out)) + out)
                except (OSError, struct.error):
                    pass


class Hierarchy:
    """Starts the whole fake tree; use as a context manager. `workdir` keeps configs and logs.
    `extra_zones` ({address: {zone: records}}) adds records to a zone of ZONES, or a zone
    (records with its SOA) to a server, or a new NSD server."""

    def __init__(self, workdir=None, extra_zones=None):
        self.workdir = workdir or tempfile.mkdtemp(prefix="dnsfixture-")
        self.zones = {addr: dict(zones) for addr, zones in ZONES.items()}
        for addr, zones in (extra_zones or {}).items():
            for zone, body in zones.items():
                self.zones.setdefault(addr, {})
                self.zones[addr][zone] = self.zones[addr].get(zone, "") + body
        self.nsd_pids = []
        self.threads = []
        self.relay = None
        self.silent = None
        self.spoofer = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def write_hints(self, path=None):
        path = path or os.path.join(self.workdir, "root.hints")
        with open(path, "w") as f:
            f.write(hints_text())
        return path

    def start(self):
        if os.geteuid() != 0:
            raise RuntimeError("the DNS fixture needs root inside a private network namespace")
        for addr, zones in self.zones.items():
            self._start_nsd(addr, zones)
        self.silent = SilentServer(SILENT_ADDR)
        self.relay = CountingRelay(RELAY_ADDR, "127.0.0.9")
        self.spoofer = SpoofingServer(SPOOF_ADDR, SPOOF_WRONG_SOURCE)
        self.threads = [self.silent, self.relay, self.spoofer]
        for t in self.threads:
            t.start()
        for addr in self.zones:
            self._wait_ready(addr)

    def _start_nsd(self, addr, zones):
        d = os.path.join(self.workdir, "nsd-" + addr)
        os.makedirs(d, exist_ok=True)
        conf = NSD_CONF.format(addr=addr, dir=d)
        for i, (zone, body) in enumerate(zones.items()):
            fname = "zone%d.zone" % i
            with open(os.path.join(d, fname), "w") as f:
                f.write("$ORIGIN %s\n%s" % (zone if zone != "." else ".", body))
            conf += 'zone:\n  name: "%s"\n  zonefile: "%s"\n' % (zone, fname)
        path = os.path.join(d, "nsd.conf")
        with open(path, "w") as f:
            f.write(conf)
        subprocess.run(["nsd", "-c", path], check=True)
        self.nsd_pids.append(os.path.join(d, "nsd.pid"))

    def _wait_ready(self, addr, timeout=10):
        """Polls the server with an SOA query until it answers."""
        zone = next(iter(self.zones[addr]))
        q = struct.pack("!HHHHHH", 0x4242, 0, 1, 0, 0, 0)
        for label in zone.strip(".").split("."):
            if label:
                q += bytes([len(label)]) + label.encode()
        q += b"\0" + struct.pack("!HH", 6, 1)
        if not wait_udp_answer(addr, 53, q, timeout, 0.2):
            raise RuntimeError("NSD on %s did not come up; see %s" % (addr, self.workdir))

    def stop(self):
        for t in self.threads:
            t.stop()
        for pidfile in self.nsd_pids:
            try:
                with open(pidfile) as f:
                    os.kill(int(f.read().strip()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        self.nsd_pids = []

    def cleanup(self):
        shutil.rmtree(self.workdir, ignore_errors=True)
