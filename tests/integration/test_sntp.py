#!/usr/bin/env python3
"""The SNTP server ([sntp]) with real clients on a custom port: chronyd -Q takes a sample
from it (and reports the offset without touching the clock), python3-ntplib reads the
configured stratum and reference ID in NTPv4 and NTPv3; raw datagrams check the origin
timestamp and that other modes, other versions, short packets, garbage and clients outside
allow_clients get no answer (each followed on the same socket by a good request whose answer
is the first to arrive); a flood from one address gets a Kiss-o'-Death RATE and then
nothing, while another client is still answered; the counters in /metrics add up."""
import os
import re
import socket
import struct
import subprocess
import time

import harness as h

PORT = 12300
ADMIN_PORT = 9145
RATE, BURST = 2, 40


def import_ntplib():
    """python3-ntplib is Debian's package: on another interpreter (pyenv), from Debian's path."""
    try:
        import ntplib
    except ImportError:
        import sys
        sys.path.append("/usr/lib/python3/dist-packages")
        import ntplib
    return ntplib


def ntp_request(transmit, version=4, mode=3, li=0):
    return bytes([li << 6 | version << 3 | mode, 0, 6, 0xE9]) + b"\0" * 36 + struct.pack(">Q", transmit)


def origin_of(reply):
    return struct.unpack(">Q", reply[24:32])[0]


class Sntp(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config=(
            f'[admin]\nenabled = true\nlisten = ["127.0.0.1:{ADMIN_PORT}"]\n'
            f'[sntp]\nenabled = true\nlisten = ["127.0.0.1:{PORT}"]\nstratum = 3\nreference_id = "192.0.2.1"\n'
            f'allow_clients = ["127.0.0.1/32", "127.0.0.3/32"]\nrate = {RATE}\nburst = {BURST}\n'
            f'root_delay = 0.25\nroot_dispersion = 0.5\n')).start()
        h.wait_port(ADMIN_PORT)

    def metrics(self):
        return h.scrape_metrics(ADMIN_PORT)

    def result(self, m, name):
        return m.get(f'outpost_sntp_requests_total{{result="{name}"}}', 0)

    def test_chronyd_takes_a_sample(self):
        d = os.path.join(self.tmp, "chrony")
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "chrony.conf")
        with open(conf, "w") as f:
            f.write(f"pidfile {d}/chronyd.pid\ndriftfile {d}/drift\n")
        r = subprocess.run(["chronyd", "-Q", "-f", conf, "-t", "30", "-L", "0",
                            f"server 127.0.0.1 port {PORT} iburst maxsamples 1"],
                           capture_output=True, text=True, timeout=60)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, out)
        m = re.search(r"System clock wrong by (-?[\d.]+) seconds", out)
        self.assertIsNotNone(m, out)
        self.assertLess(abs(float(m.group(1))), 1.0, out)  # the same host clock on both sides

    def test_ntplib_v4_and_v3(self):
        ntplib = import_ntplib()
        c = ntplib.NTPClient()
        for version in (4, 3):
            r = c.request("127.0.0.1", port=PORT, version=version, timeout=10)
            self.assertEqual(r.version, version)
            self.assertEqual(r.mode, 4)
            self.assertEqual(r.stratum, 3)
            self.assertEqual(r.leap, 0)
            self.assertEqual(ntplib.ref_id_to_text(r.ref_id, r.stratum), "192.0.2.1")
            self.assertAlmostEqual(r.root_delay, 0.25, places=3)
            self.assertAlmostEqual(r.root_dispersion, 0.5, places=3)
            self.assertLess(r.precision, -5)
            self.assertLess(abs(r.offset), 1.0)
            self.assertLessEqual(r.recv_timestamp, r.tx_timestamp)

    def test_origin_and_ignored_packets(self):
        before = self.metrics()
        bad = [
            ntp_request(1, mode=1), ntp_request(2, mode=2), ntp_request(3, mode=4), ntp_request(4, mode=5),
            ntp_request(5, mode=6), ntp_request(6, mode=7),                   # not client requests
            ntp_request(7, version=1), ntp_request(8, version=2), ntp_request(9, version=5),
            ntp_request(10, version=7),                                        # other versions
            ntp_request(11)[:47], b"\x23", os.urandom(20),                      # short
        ]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            for i, datagram in enumerate(bad):
                s.sendto(datagram, ("127.0.0.1", PORT))
                good = 0x0123456789000000 + i
                s.sendto(ntp_request(good), ("127.0.0.1", PORT))
                reply, _ = s.recvfrom(1024)
                self.assertEqual(len(reply), 48)
                self.assertEqual(origin_of(reply), good, f"datagram {i} was answered")
                self.assertEqual(reply[0] & 7, 4)
                self.assertEqual(reply[1], 3)
                # An extension field after the header does not stop the answer.
            s.sendto(ntp_request(77) + b"\0\x02\0\x10" + b"\0" * 12, ("127.0.0.1", PORT))
            self.assertEqual(origin_of(s.recvfrom(1024)[0]), 77)
        # 127.0.0.2 is not in allow_clients: nothing, then 127.0.0.1 is answered.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.2", 0))
            s.sendto(ntp_request(99), ("127.0.0.1", PORT))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            s.sendto(ntp_request(100), ("127.0.0.1", PORT))
            self.assertEqual(origin_of(s.recvfrom(1024)[0]), 100)
        after = self.metrics()
        delta = {k: self.result(after, k) - self.result(before, k)
                 for k in ("ignored_mode", "bad_version", "malformed", "client")}
        self.assertEqual(delta, {"ignored_mode": 6, "bad_version": 4, "malformed": 3, "client": 1})
        log = self.outpost.log_text()
        self.assertIn("not a client request", log)
        self.assertIn("client not in sntp.allow_clients", log)

    def test_flood_gets_kod_rate(self):
        before = self.metrics()
        n, batch = 400, 50
        other_done = 0

        def accounted():
            m = self.metrics()
            d = {k: self.result(m, k) - self.result(before, k) for k in ("answered", "kod", "rate_dropped")}
            d["answered"] -= other_done
            return d, d["answered"] + d["kod"] + d["rate_dropped"]

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flood:
            flood.bind(("127.0.0.3", 0))
            flood.settimeout(10)
            # In batches that fit the socket buffers, each accounted for (answered, KoD or
            # dropped by the rate limit) before the next: the kernel drops nothing.
            for sent in range(0, n, batch):
                for i in range(sent, sent + batch):
                    flood.sendto(ntp_request(0x5000 + i), ("127.0.0.1", PORT))
                for _ in range(100):
                    delta, total = accounted()
                    if total >= sent + batch:
                        break
                    time.sleep(0.1)
                self.assertEqual(total, sent + batch, delta)
                if sent == n // 2:
                    # Another client meanwhile: its own bucket, answered normally.
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
                        other.settimeout(10)
                        other.sendto(ntp_request(0x9999), ("127.0.0.1", PORT))
                        reply = other.recvfrom(1024)[0]
                        self.assertEqual(origin_of(reply), 0x9999)
                        self.assertEqual(reply[1], 3)
                    other_done = 1
            delta, total = accounted()
            self.assertEqual(total, n)
            self.assertGreaterEqual(delta["kod"], 1)
            self.assertGreater(delta["rate_dropped"], 0)
            self.assertLess(delta["answered"], n // 2)
            replies = [flood.recvfrom(1024)[0] for _ in range(int(delta["answered"] + delta["kod"]))]
        kods = [r for r in replies if r[1] == 0]
        self.assertEqual(len(kods), delta["kod"])
        for k in kods:
            self.assertEqual(k[12:16], b"RATE")
            self.assertEqual(k[0] >> 6, 3)
            self.assertIn(origin_of(k) - 0x5000, range(n))
        self.assertGreaterEqual(sum(1 for r in replies if r[1] == 3), 1)  # the burst was answered


if __name__ == "__main__":
    h.main()
