#!/usr/bin/env python3
"""The SNMP agent ([snmp]) with net-snmp's own tools, numeric OIDs (-On):
- standalone SNMPv2c: snmpget of Squid's OIDs equal to the /metrics figures after real
  proxy traffic (requests, hits, objects, uptime); snmpwalk and snmpbulkwalk of Squid's tree
  and of Outpost's subtree (the same rows, ending at the end of the tree); a wrong community,
  a client outside allow_clients, SNMPv1/v3, truncated BER, a huge length, garbage and a SET
  get no answer or notWritable, are counted in /metrics and logged rate-limited — each
  followed on the same socket by a good request whose answer is the first to arrive;
- AgentX: a real snmpd started here as master (its own config, ports and socket) queried
  with an SNMPv3 authPriv user made by createUser: get, walk and bulkwalk give what the
  standalone agent gives; snmpd restarted: Outpost registers again by itself;
- a scripted hostile master (garbage instead of a Response; a Close; silence) is dropped and
  tried again, while the standalone agent goes on answering."""
import os
import re
import socket
import subprocess
import time

import harness as h

SNMP_PORT = 3401
MASTER_PORT = 1161
ADMIN_PORT = 9145
COMMUNITY = "s3cret"
SQUID = ".1.3.6.1.4.1.3495.1"
OUTPOST = ".1.3.6.1.4.1.32473.1"
V3 = ["-v3", "-l", "authPriv", "-u", "opuser", "-a", "SHA", "-A", "authpass123", "-x", "AES", "-X", "privpass123"]
ENV = dict(os.environ, MIBS="", MIBDIRS="/nonexistent")  # numeric OIDs only: no MIB files here


# ---- a minimal BER writer for the hostile datagrams

def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + length + content


def ber_int(v):
    return tlv(0x02, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True))


def ber_oid(text):
    arcs = [int(a) for a in text.strip(".").split(".")]
    out = bytearray([arcs[0] * 40 + arcs[1]])
    for a in arcs[2:]:
        chunk = [a & 0x7F]
        a >>= 7
        while a:
            chunk.append(0x80 | (a & 0x7F))
            a >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, bytes(out))


def snmp_request(request_id, oid, community=COMMUNITY, version=1, pdu=0xA0, value=b"\x05\x00"):
    vb = tlv(0x30, ber_oid(oid) + value)
    body = ber_int(request_id) + ber_int(0) + ber_int(0) + tlv(0x30, vb)
    return tlv(0x30, ber_int(version) + tlv(0x04, community.encode()) + tlv(pdu, body))


def response_request_id(data):
    """request-id of a v2c Response (enough parsing for our own requests' answers)."""
    i = 2 if data[1] < 0x80 else 2 + (data[1] & 0x7F)
    i += 3  # version
    i += 2 + data[i + 1]  # community
    assert data[i] == 0xA2, data[:40]
    i += 2 if data[i + 1] < 0x80 else 2 + (data[i + 1] & 0x7F)
    assert data[i] == 0x02
    return int.from_bytes(data[i + 2:i + 2 + data[i + 1]], "big", signed=True), data[i + 2 + data[i + 1]:]


def parse_snmp_lines(text):
    """{oid: (type, value)} from net-snmp's -On output."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\.[\d.]+) = (?:([\w-]+): )?(.*)$", line)
        if m:
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


def ordered_oids(text):
    return [line.split(" = ")[0] for line in text.splitlines() if line.startswith(".") and " = " in line]


class Snmp(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.origin = h.TestOrigin(cls.procs)
        cls.agentx_sock = os.path.join(cls.tmp, "agentx.sock")
        cls.snmpd = None
        cls.start_snmpd()
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config=(
            f'[admin]\nenabled = true\nlisten = ["127.0.0.1:{ADMIN_PORT}"]\n'
            f'[snmp]\nenabled = true\nlisten = ["127.0.0.1:{SNMP_PORT}"]\ncommunity = "{COMMUNITY}"\n'
            f'allow_clients = ["127.0.0.1/32"]\nagentx = "{cls.agentx_sock}"\nagentx_retry = 0.3\n'
            f'agentx_timeout = 2\n')).start()
        h.wait_port(ADMIN_PORT)

    @classmethod
    def start_snmpd(cls):
        d = os.path.join(cls.tmp, "snmpd")
        os.makedirs(os.path.join(d, "persist"), exist_ok=True)
        conf = os.path.join(d, "snmpd.conf")
        with open(conf, "w") as f:
            f.write(f"agentaddress udp:127.0.0.1:{MASTER_PORT}\nmaster agentx\nagentXSocket {cls.agentx_sock}\n"
                    "createUser opuser SHA \"authpass123\" AES \"privpass123\"\nrouser opuser priv\n")
        env = dict(ENV, SNMP_PERSISTENT_DIR=os.path.join(d, "persist"))
        cls.snmpd = cls.procs.start(["snmpd", "-f", "-Lf", os.path.join(d, "snmpd.log"), "-C", "-c", conf,
                                     "-p", os.path.join(d, "snmpd.pid"), "-r"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @classmethod
    def stop_snmpd(cls):
        cls.snmpd.terminate()
        cls.snmpd.wait(10)

    # ---- helpers

    def tool(self, name, *args, target=f"127.0.0.1:{SNMP_PORT}", community=COMMUNITY, v3=False, check=True):
        auth = V3 if v3 else ["-v2c", "-c", community]
        r = subprocess.run([name, *auth, "-On", "-t", "3", "-r", "1", target, *args], capture_output=True,
                           text=True, env=ENV, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"{name} {args} failed ({r.returncode}): {r.stdout}{r.stderr}")
        return r

    def master(self, name, *args, check=True):
        return self.tool(name, *args, target=f"127.0.0.1:{MASTER_PORT}", v3=True, check=check)

    def metrics(self):
        return h.scrape_metrics(ADMIN_PORT)

    def family_sum(self, m, name, must=""):
        return sum(v for k, v in m.items() if (k == name or k.startswith(name + "{")) and must in k)

    def wait_registered(self):
        """Until the master answers Outpost's OIDs (the subagent registers after snmpd starts)."""
        for _ in range(200):
            r = self.master("snmpget", SQUID + ".1.3.0", check=False)
            if r.returncode == 0 and "Timeticks" in r.stdout:
                return
            time.sleep(0.1)
        self.fail(f"Outpost never registered with snmpd: {r.stdout}{r.stderr}\n{self.outpost.log_text()[-3000:]}")

    def stable_counts(self):
        """The Squid request counters and /metrics taken while nothing moves: two equal
        snmpgets around a scrape (a request is counted when its exchange ends)."""
        oids = [SQUID + ".3.2.1.1.0", SQUID + ".3.2.1.2.0", SQUID + ".3.1.7.0"]
        for _ in range(50):
            a = parse_snmp_lines(self.tool("snmpget", *oids).stdout)
            m = self.metrics()
            b = parse_snmp_lines(self.tool("snmpget", *oids).stdout)
            if a == b:
                return b, m
            time.sleep(0.1)
        self.fail("the counters never held still")

    # ---- standalone SNMPv2c

    def test_get_matches_metrics(self):
        self.origin.script("/script/snmp-hit", body="x" * 3000, headers=[["Cache-Control", "max-age=300"]])
        url = self.origin.url("/script/snmp-hit")
        for _ in range(3):
            h.curl(url)
        h.curl(self.origin.url("/echo?snmp=1"))
        got, m = self.stable_counts()
        requests = self.family_sum(m, "outpost_http_requests_total")
        hits = sum(self.family_sum(m, "outpost_http_requests_total", f'outcome="{o}"')
                   for o in ("TCP_HIT", "TCP_MEM_HIT", "TCP_IMS_HIT", "TCP_STALE_HIT", "TCP_CF_HIT",
                             "TCP_REFRESH_UNMODIFIED", "TCP_REFRESH_FAIL_OLD"))
        self.assertGreaterEqual(requests, 4)
        self.assertGreaterEqual(hits, 2)
        self.assertEqual(got[SQUID + ".3.2.1.1.0"], ("Counter32", str(int(requests))))
        self.assertEqual(got[SQUID + ".3.2.1.2.0"], ("Counter32", str(int(hits))))
        objects = self.family_sum(m, "outpost_store_objects", 'namespace="http"')
        self.assertGreaterEqual(objects, 1)
        self.assertEqual(got[SQUID + ".3.1.7.0"], ("Gauge32", str(int(objects))))
        r = parse_snmp_lines(self.tool("snmpget", SQUID + ".1.3.0", SQUID + ".2.3.0", SQUID + ".2.6.0",
                                       SQUID + ".3.1.3.0", SQUID + ".1.3.1").stdout)
        self.assertEqual(r[SQUID + ".1.3.0"][0], "Timeticks")
        self.assertEqual(r[SQUID + ".2.6.0"], ("STRING", '"outpost-test"'))
        self.assertGreater(int(r[SQUID + ".3.1.3.0"][1]), 1000)  # cacheMemUsage: resident KB
        self.assertIn("No Such Instance", r[SQUID + ".1.3.1"][1])

    def test_walk_and_bulkwalk_reach_the_end(self):
        walk = self.tool("snmpwalk", SQUID).stdout
        oids = ordered_oids(walk)
        self.assertEqual(oids[0], SQUID + ".1.1.0")
        self.assertIn(SQUID + ".3.2.1.1.0", oids)
        self.assertTrue(all(o.startswith(SQUID + ".") for o in oids))
        bulk = self.tool("snmpbulkwalk", "-Cr7", SQUID).stdout
        self.assertEqual(ordered_oids(bulk), oids)
        # Outpost's subtree is the last: the walk crosses the end of the tree and stops there.
        own = self.tool("snmpwalk", OUTPOST).stdout
        self.assertIn("No more variables left in this MIB View", own)
        own_oids = ordered_oids(own)
        self.assertEqual(own_oids[-1], own_oids[-2])  # the endOfMibView row names the last OID
        self.assertIn(OUTPOST + ".1.1.0", own_oids)
        self.assertIn(OUTPOST + ".2.1.0", own_oids)
        bulk_own = self.tool("snmpbulkwalk", "-Cr50", OUTPOST).stdout
        self.assertEqual(ordered_oids(bulk_own)[:len(own_oids) - 1], own_oids[:-1])
        # GETNEXT past the end, and from before the tree.
        r = self.tool("snmpgetnext", own_oids[-1], ".1.3").stdout
        self.assertIn("No more variables left", r)
        self.assertIn(SQUID + ".1.1.0 = INTEGER", r)

    def test_hostile_datagrams_get_no_answer(self):
        before = self.metrics()
        log_before = self.outpost.log_text().count("wrong community")
        # The CLI with a wrong community: nothing comes back.
        r = self.tool("snmpget", SQUID + ".1.3.0", community="public", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Timeout", r.stderr + r.stdout)
        bad = [
            snmp_request(1, SQUID + ".1.3.0", community="wrong"),
            snmp_request(2, SQUID + ".1.3.0", version=0),           # SNMPv1
            snmp_request(3, SQUID + ".1.3.0", version=3),           # SNMPv3 (as a community message)
            snmp_request(4, SQUID + ".1.3.0")[:-3],                 # truncated BER
            b"\x30\x84\x7f\xff\xff\xff\x02\x01\x01",                # a huge length
            b"\x30\x03\x02\x01",                                    # inner length past the end
            os.urandom(64),
            b"",                                                    # (never reaches the agent)
            snmp_request(5, SQUID + ".1.3.0", pdu=0xA2),           # a Response, not a request
        ]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            for i, datagram in enumerate(bad):
                s.sendto(datagram, ("127.0.0.1", SNMP_PORT))
                s.sendto(snmp_request(1000 + i, SQUID + ".1.3.0"), ("127.0.0.1", SNMP_PORT))
                data, _ = s.recvfrom(65536)
                rid, _ = response_request_id(data)
                self.assertEqual(rid, 1000 + i, f"datagram {i} was answered")
            # 50 wrong communities: counted, logged at most once more (rate-limited).
            for i in range(50):
                s.sendto(snmp_request(i, SQUID + ".1.3.0", community="nope"), ("127.0.0.1", SNMP_PORT))
            s.sendto(snmp_request(2000, SQUID + ".1.3.0"), ("127.0.0.1", SNMP_PORT))
            self.assertEqual(response_request_id(s.recvfrom(65536)[0])[0], 2000)
            # A SET is refused: notWritable (17) at index 1.
            s.sendto(snmp_request(3000, SQUID + ".2.6.0", pdu=0xA3, value=tlv(0x04, b"x")), ("127.0.0.1", SNMP_PORT))
            data, _ = s.recvfrom(65536)
            rid, rest = response_request_id(data)
            self.assertEqual(rid, 3000)
            self.assertEqual(rest[:6], bytes([0x02, 0x01, 17, 0x02, 0x01, 1]))
        # A client outside allow_clients (127.0.0.1/32): no answer, then 127.0.0.1 is answered.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.2", 0))
            s.settimeout(10)
            s.sendto(snmp_request(4000, SQUID + ".1.3.0"), ("127.0.0.1", SNMP_PORT))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            s.sendto(snmp_request(4001, SQUID + ".1.3.0"), ("127.0.0.1", SNMP_PORT))
            self.assertEqual(response_request_id(s.recvfrom(65536)[0])[0], 4001)
        after = self.metrics()

        def delta(reason):
            key = f'outpost_snmp_dropped_total{{reason="{reason}"}}'
            return after.get(key, 0) - before.get(key, 0)

        self.assertGreaterEqual(delta("community"), 52)
        self.assertEqual(delta("version"), 2)
        self.assertEqual(delta("malformed"), 4)
        self.assertEqual(delta("not_request"), 1)
        self.assertEqual(delta("client"), 1)
        self.assertGreaterEqual(after['outpost_snmp_requests_total{pdu="set"}'], 1)
        log = self.outpost.log_text()
        self.assertLessEqual(log.count("wrong community") - log_before, 2, "not rate-limited")
        self.assertIn("SNMPv3", log)
        self.assertIn("client not in snmp.allow_clients", log)
        self.assertEqual(self.outpost.proc.poll(), None)

    # ---- AgentX with a real snmpd and an SNMPv3 user

    def test_agentx_through_snmpd_v3(self):
        self.wait_registered()
        mine = ordered_oids(self.tool("snmpwalk", SQUID).stdout)
        theirs = ordered_oids(self.master("snmpwalk", SQUID).stdout)
        self.assertEqual(theirs, mine)
        bulk = ordered_oids(self.master("snmpbulkwalk", "-Cr9", OUTPOST).stdout)
        own = [o for o in ordered_oids(self.tool("snmpwalk", OUTPOST).stdout)]
        self.assertEqual(bulk, own[:-1])  # snmpd's view goes on past Outpost's tree: no endOfMibView row
        got, m = None, None
        for _ in range(50):
            a = parse_snmp_lines(self.master("snmpget", SQUID + ".3.2.1.1.0", SQUID + ".2.6.0").stdout)
            m = self.metrics()
            b = parse_snmp_lines(self.master("snmpget", SQUID + ".3.2.1.1.0", SQUID + ".2.6.0").stdout)
            if a == b:
                got = b
                break
        self.assertEqual(got[SQUID + ".3.2.1.1.0"][1], str(int(self.family_sum(m, "outpost_http_requests_total"))))
        self.assertEqual(got[SQUID + ".2.6.0"], ("STRING", '"outpost-test"'))
        # Read-only: snmpd's SET through the subagent fails.
        r = subprocess.run(["snmpset", *V3, "-On", "-t", "3", "-r", "0", f"127.0.0.1:{MASTER_PORT}",
                            SQUID + ".2.6.0", "s", "x"], capture_output=True, text=True, env=ENV, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        # Without the user's keys snmpd answers nothing of Outpost's.
        r = subprocess.run(["snmpget", "-v3", "-l", "authPriv", "-u", "opuser", "-a", "SHA", "-A", "wrongpass1",
                            "-x", "AES", "-X", "privpass123", "-On", "-t", "1", "-r", "0",
                            f"127.0.0.1:{MASTER_PORT}", SQUID + ".1.3.0"], capture_output=True, text=True,
                           env=ENV, timeout=30)
        self.assertNotIn("Timeticks", r.stdout)

        # snmpd restarts: Outpost registers again by itself.
        sessions = self.metrics()["outpost_snmp_agentx_sessions_total"]
        self.stop_snmpd()
        self.start_snmpd()
        self.wait_registered()
        m = self.metrics()
        self.assertGreater(m["outpost_snmp_agentx_sessions_total"], sessions)
        self.assertEqual(m["outpost_snmp_agentx_connected"], 1)
        self.assertIn("AgentX session with the master", self.outpost.log_text())


class HostileMaster(h.IntegrationTest):
    """A scripted AgentX master: garbage for a Response, then a Close, then silence."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sock_path = os.path.join(cls.tmp, "master.sock")
        cls.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        cls.server.bind(cls.sock_path)
        cls.server.listen(8)
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config=(
            f'[snmp]\nenabled = true\nlisten = ["127.0.0.1:{SNMP_PORT}"]\ncommunity = "{COMMUNITY}"\n'
            f'agentx = "{cls.sock_path}"\nagentx_retry = 0.2\nagentx_timeout = 0.5\n')).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        super().tearDownClass()

    def accept_open(self):
        self.server.settimeout(30)
        conn, _ = self.server.accept()
        conn.settimeout(30)
        head = b""
        while len(head) < 20:
            head += conn.recv(20 - len(head))
        self.assertEqual(head[0], 1)  # version
        self.assertEqual(head[1], 1)  # Open
        self.assertTrue(head[2] & 0x10)  # network byte order
        length = int.from_bytes(head[16:20], "big")
        body = b""
        while len(body) < length:
            body += conn.recv(length - len(body))
        return conn, head

    def test_garbage_close_and_silence(self):
        # 1: garbage instead of a Response: dropped, then a new connection.
        conn, _ = self.accept_open()
        conn.sendall(b"\x07" * 40)
        self.assertEqual(conn.recv(100), b"")  # Outpost closed it
        conn.close()
        # 2: a Response with a payload length over 64 KiB.
        conn, head = self.accept_open()
        conn.sendall(bytes([1, 18, 0x10, 0]) + b"\0\0\0\x01" + b"\0\0\0\0" + head[12:16] + (1 << 20).to_bytes(4, "big"))
        self.assertEqual(conn.recv(100), b"")
        conn.close()
        # 3: the session opened, then a Close from the master.
        conn, head = self.accept_open()
        conn.sendall(bytes([1, 18, 0x10, 0]) + (42).to_bytes(4, "big") + b"\0\0\0\0" + head[12:16] +
                     (8).to_bytes(4, "big") + b"\0" * 8)
        regs = conn.recv(4096)
        self.assertEqual(regs[1], 3)  # Register
        close = bytes([1, 2, 0x10, 0]) + (42).to_bytes(4, "big") + b"\0" * 8 + (4).to_bytes(4, "big") + b"\x01\0\0\0"
        conn.sendall(close)
        while conn.recv(4096):
            pass
        conn.close()
        # 4: silence after the Open: cut after agentx_timeout, then tried again.
        conn, _ = self.accept_open()
        self.assertEqual(conn.recv(100), b"")
        conn.close()
        conn, _ = self.accept_open()
        conn.close()
        # The standalone agent answered all along.
        r = subprocess.run(["snmpget", "-v2c", "-c", COMMUNITY, "-On", "-t", "3", "-r", "1",
                            f"127.0.0.1:{SNMP_PORT}", SQUID + ".1.3.0"], capture_output=True, text=True, env=ENV,
                           timeout=30)
        self.assertIn("Timeticks", r.stdout)
        for _ in range(100):  # debug lines reach the file with the logger's periodic flush
            log = self.outpost.log_text()
            if "no answer from the master" in log:
                break
            time.sleep(0.1)
        # One warning while no session opens; the later failures at debug level.
        self.assertEqual(len(re.findall(r"warning .*snmp: AgentX master at", log)), 1, log)
        self.assertIn("bad PDU from the master: AgentX version 7", log)
        self.assertIn("over 64 KiB", log)
        self.assertIn("the master closed the session", log)
        self.assertIn("no answer from the master", log)
        self.assertEqual(self.outpost.proc.poll(), None)


if __name__ == "__main__":
    h.main()
