"""Prefetch (issue 13; Unbound's prefetch). pf.test.'s scripted server answers NAME A with TTL
10, 192.0.2.71 the first time it is asked and 192.0.2.72 afterwards, and logs every query.
With prefetch on, a hit in the last 10% of the TTL (the last second) is answered from the
cache at once and re-resolved in the background, so after the original TTL the name is still
a cache hit (with the new data); with prefetch off the same hit is only a hit, and the name
is a miss once it expires."""
import os
import sys
import threading
import time
import unittest

os.environ["OUTPOST_BIN"] = sys.argv.pop(1)

from dnsfixture import ScriptedServer, rr, zone_reply  # noqa: E402
from dnsserver import OutpostPairTest, section, status, ttls  # noqa: E402

AUTH = "127.0.0.61"
ZONE = "pf.test."
TTL = 10
EXTRA_ZONES = {"127.0.0.3": {"test.": "pf.test. 3600 IN NS ns.pf.test.\nns.pf.test. 3600 IN A %s\n" % AUTH}}


class Authority:
    def __init__(self):
        self.asked = {}
        self.lock = threading.Lock()

    def __call__(self, q):
        if q.type != 1 or q.name in (ZONE, "ns." + ZONE):
            return zone_reply(q, ZONE)
        with self.lock:
            n = self.asked[q.name] = self.asked.get(q.name, 0) + 1
        return q.reply(answer=[rr(q.name, "A", TTL, "192.0.2.71" if n == 1 else "192.0.2.72")])


class PrefetchTest(OutpostPairTest):
    EXTRA_ZONES = EXTRA_ZONES
    ON_EXTRA = "prefetch = true\n"

    @classmethod
    def make_servers(cls):
        cls.server = ScriptedServer(AUTH, Authority())
        return [cls.server]

    def answer(self, out):
        self.assertEqual(status(out), "NOERROR", out)
        return [r[4] for r in section(out, "ANSWER")], max(ttls(out))

    def wait_for(self, condition, timeout=3):
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)

    def test_a_hit_near_expiry_prefetches_and_the_name_never_expires(self):
        hot, cold = "hot." + ZONE, "cold." + ZONE
        self.assertEqual(self.answer(self.on.dig(hot))[0], ["192.0.2.71"])
        self.assertEqual(self.answer(self.off.dig(cold))[0], ["192.0.2.71"])
        stored = time.monotonic()
        self.assertEqual(self.server.count(hot), 1)

        # Half way: a plain hit on both, nothing upstream.
        time.sleep(TTL / 2)
        for o, name in ((self.on, hot), (self.off, cold)):
            self.assertEqual(self.answer(o.dig(name))[0], ["192.0.2.71"])
        time.sleep(0.3)
        self.assertEqual((self.server.count(hot), self.server.count(cold)), (1, 1))
        self.assertEqual(self.on.metric("outpost_dns_prefetches_total"), 0)

        # The last 10% of the TTL: the cached answer at once (TTL 0 or 1) ...
        time.sleep(max(0, stored + TTL * 0.93 - time.monotonic()))
        hits_before = self.on.metric("outpost_dns_cache_hits_total", source="client")
        addresses, ttl = self.answer(self.on.dig(hot))
        self.assertEqual(addresses, ["192.0.2.71"])
        self.assertLessEqual(ttl, 1)
        self.assertEqual(self.on.metric("outpost_dns_cache_hits_total", source="client"), hits_before + 1)
        # ... and one upstream query behind it.
        self.wait_for(lambda: self.server.count(hot) == 2)
        self.assertEqual(self.server.count(hot), 2)
        self.assertEqual(self.on.metric("outpost_dns_prefetches_total"), 1)
        # Without prefetch the same hit asks nothing.
        self.assertEqual(self.answer(self.off.dig(cold))[0], ["192.0.2.71"])
        time.sleep(0.3)
        self.assertEqual(self.server.count(cold), 1)
        self.assertEqual(self.off.metric("outpost_dns_prefetches_total"), 0)

        # Past the original TTL: still a hit with prefetch (the refreshed data, a fresh TTL);
        # a miss without.
        time.sleep(max(0, stored + TTL + 1 - time.monotonic()))
        addresses, ttl = self.answer(self.on.dig(hot))
        self.assertEqual(addresses, ["192.0.2.72"])
        self.assertGreaterEqual(ttl, TTL - 3)
        self.assertEqual(self.server.count(hot), 2)
        self.assertEqual(self.on.metric("outpost_dns_prefetches_total"), 1)
        self.assertEqual(self.answer(self.off.dig(cold))[0], ["192.0.2.72"])
        self.assertEqual(self.server.count(cold), 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
