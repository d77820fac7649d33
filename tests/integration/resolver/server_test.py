"""Outpost's DNS server (dns_server driver, 2 workers) against the fake hierarchy, queried with
dig: answers and flags, TTL countdown and re-resolution after expiry (counted at a relay),
negative-cache expiry, truncation, REFUSED/NOTIMP/FORMERR, RD=0, local zones, forwarding,
spoofing, fallback, and malformed packets from the fuzz corpus."""
import os
import socket
import struct
import subprocess
import sys
import time
import unittest

import dnsfixture
import dnsserver
import harness
from dnsserver import answers, flags, status

DNS_SERVER = sys.argv.pop(1)
CORPUS = sys.argv.pop(1)
HERE = os.path.dirname(os.path.abspath(__file__))
LISTEN = "127.0.0.1"
FORWARDER = "127.0.0.20"


def dig(*args, server=LISTEN):
    return dnsserver.dig(server, *args)


def start_server(workdir, name, body):
    conf = os.path.join(workdir, name + ".toml")
    with open(conf, "w") as f:
        f.write(body)
    p = subprocess.Popen([DNS_SERVER, conf], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    if line != "ready":
        p.kill()
        raise RuntimeError("dns_server did not start: " + line)
    return p


class ServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = dnsfixture.Hierarchy()
        cls.h.start()
        hints = cls.h.write_hints()
        zone = os.path.join(HERE, "networkutopia.com.zone")
        cls.server = start_server(cls.h.workdir, "main", f"""
[server]
workers = 2
[log]
level = "warn"
[dns]
listen = ["{LISTEN}:53"]
{harness.fake_root_keys(hints)}allow_recursion = ["127.0.0.1/32"]
local_zones = [{{ name = "networkutopia.com", file = "{zone}" }}]
""")
        cls.forwarder = start_server(cls.h.workdir, "fwd", f"""
[server]
workers = 1
[dns]
listen = ["{FORWARDER}:53"]
{harness.fake_root_keys(hints)}forward_zones = [{{ name = ".", servers = ["{LISTEN}:53"] }}]
""")

    @classmethod
    def tearDownClass(cls):
        codes = []
        for p in (cls.server, cls.forwarder):
            p.terminate()
            codes.append(p.wait(timeout=10))
        cls.h.stop()
        cls.h.cleanup()
        if codes != [0, 0]:
            raise AssertionError("dns_server exited with %s (a crash or a sanitizer report)" % codes)

    def test_answer_and_flags(self):
        out = dig("www.a.test", "AAAA")
        self.assertEqual(status(out), "NOERROR")
        self.assertEqual(flags(out), {"qr", "rd", "ra"})
        self.assertIn(["www.a.test.", answers(out)[0][1], "IN", "AAAA", "2001:db8::1"], answers(out))

    def test_cname_chain_across_zones(self):
        rows = answers(dig("chain.a.test"))
        self.assertEqual([r[3] for r in rows], ["CNAME", "CNAME", "A"])
        self.assertEqual(rows[-1][4], "192.0.2.3")

    def test_ttl_counts_down(self):
        first = int(answers(dig("mail.a.test"))[0][1])
        time.sleep(1.2)
        second = int(answers(dig("mail.a.test"))[0][1])
        self.assertLess(second, first)

    def test_reresolves_after_expiry(self):
        relay = self.h.relay
        self.assertEqual(answers(dig("short.count.test"))[0][4], "192.0.2.8")
        after_first = relay.count("short.count.test")
        self.assertGreaterEqual(after_first, 1)
        dig("short.count.test")
        self.assertEqual(relay.count("short.count.test"), after_first)  # served from cache
        time.sleep(2.5)  # TTL is 2
        self.assertEqual(answers(dig("short.count.test"))[0][4], "192.0.2.8")
        self.assertEqual(relay.count("short.count.test"), after_first + 1)

    def test_negative_cache_expires(self):
        relay = self.h.relay
        out = dig("nx.count.test")
        self.assertEqual(status(out), "NXDOMAIN")
        n = relay.count("nx.count.test")
        self.assertEqual(n, 1)
        self.assertEqual(status(dig("nx.count.test")), "NXDOMAIN")
        self.assertEqual(relay.count("nx.count.test"), n)
        time.sleep(2.5)  # SOA minimum is 2
        self.assertEqual(status(dig("nx.count.test")), "NXDOMAIN")
        self.assertEqual(relay.count("nx.count.test"), n + 1)

    def test_truncates_to_client_size_over_udp(self):
        out = dig("big.test", "TXT", "+ignore", "+bufsize=1232")
        self.assertIn("tc", flags(out))
        out = dig("big.test", "TXT", "+ignore", "+noedns")
        self.assertIn("tc", flags(out))
        self.assertLessEqual(int(out.split("MSG SIZE  rcvd: ")[1].split()[0]), 512)
        out = dig("big.test", "TXT", "+tcp")
        self.assertNotIn("tc", flags(out))
        self.assertEqual(len(answers(out)), 10)

    def test_refused_for_other_networks(self):
        out = dig("-b", "127.0.0.50", "www.a.test")
        self.assertEqual(status(out), "REFUSED")
        self.assertNotIn("ra", flags(out))

    def test_notimp_for_other_opcodes(self):
        self.assertEqual(status(dig("+opcode=status", "www.a.test")), "NOTIMP")

    def test_rd0_from_cache_only(self):
        self.assertEqual(status(dig("+norec", "txt.a.test", "TXT")), "SERVFAIL")
        dig("txt.a.test", "TXT")
        out = dig("+norec", "txt.a.test", "TXT")
        self.assertEqual(status(out), "NOERROR")
        self.assertIn('"hello world"', out)

    def test_local_zone_is_authoritative(self):
        out = dig("www.networkutopia.com")
        self.assertIn("aa", flags(out))
        self.assertEqual(answers(out)[0][4], "212.212.71.4")
        out = dig("nope.networkutopia.com")
        self.assertEqual(status(out), "NXDOMAIN")
        self.assertIn("aa", flags(out))
        self.assertEqual(answers(dig("networkutopia.com", "MX"))[0][4:], ["10", "mail.networkutopia.com."])

    def test_forwarding_mode(self):
        out = dig("final.a.test", server=FORWARDER)
        self.assertEqual(status(out), "NOERROR")
        self.assertEqual(answers(out)[0][4], "192.0.2.3")

    def test_spoofed_answers_ignored(self):
        out = dig("www.spoof.test")
        self.assertEqual(answers(out)[0][4], dnsfixture.GOOD_SPOOF_ANSWER)

    def test_fallback_past_silent_server(self):
        self.assertEqual(answers(dig("www.slow.test"))[0][4], "192.0.2.7")

    def test_malformed_packets_get_formerr_or_nothing_and_server_keeps_answering(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.3)
        sent = formerr = 0
        for name in sorted(os.listdir(CORPUS)):
            with open(os.path.join(CORPUS, name), "rb") as f:
                data = f.read()
            if len(data) < 12 or data[2] & 0x80:
                expect_reply = False  # runts and responses are dropped
            else:
                expect_reply = True
            s.sendto(data, (LISTEN, 53))
            sent += 1
            try:
                reply, _ = s.recvfrom(65535)
            except socket.timeout:
                self.assertFalse(expect_reply, name)
                continue
            self.assertEqual(reply[:2], data[:2], name)  # the client's ID comes back
            rcode = reply[3] & 0x0F
            if rcode == 1:
                formerr += 1
        s.close()
        self.assertGreater(sent, 10)
        self.assertGreater(formerr, 5)
        self.assertEqual(status(dig("www.a.test")), "NOERROR")

    def test_tcp_pipelined_queries(self):
        def q(id_, name):
            body = struct.pack("!HHHHHH", id_, 0x0100, 1, 0, 0, 0)
            for label in name.split("."):
                body += bytes([len(label)]) + label.encode()
            body += b"\0" + struct.pack("!HH", 1, 1)
            return struct.pack("!H", len(body)) + body

        c = socket.create_connection((LISTEN, 53), timeout=5)
        # More than the server resolves at once for one connection (32): it must pause reading
        # and resume, answering every one.
        names = ["www.a.test", "mail.a.test", "final.a.test", "nx%d.a.test"]
        c.sendall(b"".join(q(i, names[i % 4].replace("%d", str(i))) for i in range(1, 101)))
        ids = set()
        buf = b""
        while len(ids) < 100:
            buf += c.recv(65535)
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                n = struct.unpack("!H", buf[:2])[0]
                msg, buf = buf[2:2 + n], buf[2 + n:]
                id_ = struct.unpack("!H", msg[:2])[0]
                self.assertEqual(msg[3] & 0x0F, 3 if id_ % 4 == 3 else 0)  # NXDOMAIN for nx*
                ids.add(id_)
        c.close()
        self.assertEqual(ids, set(range(1, 101)))


if __name__ == "__main__":
    unittest.main()
