"""Serve-stale (RFC 8767; issue 13). Each test has a zone of its own (dead.test., slow.test.,
old.test.) with one scripted server: every answer takes 0.25 s, names answer with TTL 2, and
a name can be made dead (queries swallowed; a server dead for one test must not be dead for
the next, servers are remembered dead, dead_servers_test.py). Two Outposts
resolve through it, one with serve_stale (stale answers after 0.1 s, TTL 17, kept 8 s past
expiry) and one without. Checked: a dead authority gives the expired answer with TTL
stale_answer_ttl and EDE 3 where serve-stale is on, SERVFAIL where it is off; a slow
resolution gives the stale answer at stale_client_timeout and refreshes the cache behind it;
nothing is served stale_max_age after expiry; a live authority is always preferred."""
import os
import sys
import threading
import time
import unittest

os.environ["OUTPOST_BIN"] = sys.argv.pop(1)

from dnsfixture import ScriptedServer, rr, zone_reply  # noqa: E402
from dnsserver import OutpostPairTest, ede_codes, section, status, ttls  # noqa: E402

SERVERS = {"dead.test.": "127.0.0.57", "slowly.test.": "127.0.0.58", "old.test.": "127.0.0.59"}
TTL = 2
DELAY = 0.25
STALE_TTL = 17
STALE_MAX_AGE = 8

EXTRA_ZONES = {"127.0.0.3": {"test.": "".join("%s 3600 IN NS ns.%s\nns.%s 3600 IN A %s\n" % (z, z, z, a)
                                               for z, a in SERVERS.items())}}


class Authority:
    """ZONE: NAME A -> addresses[NAME] (TTL 2) after DELAY; names in `dead` never answer."""

    def __init__(self, zone):
        self.zone = zone
        self.addresses = {}
        self.dead = set()
        self.lock = threading.Lock()

    def __call__(self, q):
        with self.lock:
            if q.name in self.dead:
                return None
            address = self.addresses.get(q.name)
        time.sleep(DELAY)
        if q.type == 1 and address:
            return q.reply(answer=[rr(q.name, "A", TTL, address)])
        return zone_reply(q, self.zone, existing=tuple(self.addresses))

    def set(self, name, address=None, dead=False):
        with self.lock:
            if address:
                self.addresses[name] = address
            (self.dead.add if dead else self.dead.discard)(name)


class ServeStaleTest(OutpostPairTest):
    EXTRA_ZONES = EXTRA_ZONES
    ON_EXTRA = f"""
serve_stale = true
stale_answer_ttl = {STALE_TTL}
stale_max_age = {STALE_MAX_AGE}
stale_client_timeout = 100
"""

    @classmethod
    def make_servers(cls):
        cls.auth = {z: Authority(z) for z in SERVERS}
        cls.servers = {z: ScriptedServer(a, cls.auth[z]) for z, a in SERVERS.items()}
        return list(cls.servers.values())

    def resolve_both(self, auth, name, address):
        """Both Outposts resolve NAME once (fresh), so each caches it with TTL 2."""
        auth.set(name, address)
        for o in (self.on, self.off):
            out = o.dig(name)
            self.assertEqual(status(out), "NOERROR", out)
            self.assertEqual([r[4] for r in section(out, "ANSWER")], [address])
            self.assertLessEqual(max(ttls(out)), TTL)
            self.assertEqual(ede_codes(out), [])

    def test_dead_authority_gives_the_stale_answer_only_with_serve_stale(self):
        auth = self.auth["dead.test."]
        name = "www.dead.test."
        self.resolve_both(auth, name, "192.0.2.61")
        time.sleep(TTL + 0.5)  # expired everywhere
        auth.set(name, dead=True)
        stale_before = self.on.metric("outpost_dns_stale_answers_total")
        out = self.on.dig("+time=8", name)
        self.assertEqual(status(out), "NOERROR", out)
        self.assertEqual([r[4] for r in section(out, "ANSWER")], ["192.0.2.61"])
        self.assertEqual(ttls(out), [STALE_TTL])
        self.assertEqual(ede_codes(out), [3], out)  # RFC 8914 Stale Answer, the client sent EDNS
        self.assertEqual(self.on.metric("outpost_dns_stale_answers_total"), stale_before + 1)
        # Without EDNS the same answer, without the option.
        out = self.on.dig("+time=8", "+noedns", name)
        self.assertEqual([r[4] for r in section(out, "ANSWER")], ["192.0.2.61"])
        self.assertNotIn("EDE", out)
        # serve_stale off: the expired answer is gone for clients.
        out = self.off.dig("+time=8", name)
        self.assertEqual(status(out), "SERVFAIL", out)
        self.assertEqual(self.off.metric("outpost_dns_stale_answers_total"), 0)

    def test_slow_resolution_gives_the_stale_answer_and_refreshes_behind_it(self):
        auth, server = self.auth["slowly.test."], self.servers["slowly.test."]
        name = "www.slowly.test."
        self.resolve_both(auth, name, "192.0.2.62")
        time.sleep(TTL + 0.5)
        # The authority is alive (every answer takes 0.25 s) and has a new address: the client
        # gets the old one at stale_client_timeout (0.1 s) ...
        auth.set(name, "192.0.2.63")
        asked = server.count(name)
        started = time.monotonic()
        out = self.on.dig(name)
        took = time.monotonic() - started
        self.assertEqual(status(out), "NOERROR", out)
        self.assertEqual([r[4] for r in section(out, "ANSWER")], ["192.0.2.62"], out)
        self.assertEqual(ttls(out), [STALE_TTL])
        self.assertEqual(ede_codes(out), [3])
        print("stale answer after %.3f s (the authority answers in %.2f s)" % (took, DELAY))
        # ... while the resolution goes on and refreshes the cache: the next client gets the new
        # address from the cache, with no further upstream query.
        time.sleep(DELAY * 3)
        self.assertEqual(server.count(name), asked + 1)
        out = self.on.dig(name)
        self.assertEqual([r[4] for r in section(out, "ANSWER")], ["192.0.2.63"], out)
        self.assertLessEqual(max(ttls(out)), TTL)
        self.assertEqual(ede_codes(out), [])
        self.assertEqual(server.count(name), asked + 1)
        # serve_stale off: the client waits for the new answer.
        out = self.off.dig(name)
        self.assertEqual([r[4] for r in section(out, "ANSWER")], ["192.0.2.63"], out)

    def test_nothing_is_served_stale_max_age_after_expiry(self):
        auth = self.auth["old.test."]
        name = "www.old.test."
        self.resolve_both(auth, name, "192.0.2.64")
        time.sleep(TTL + STALE_MAX_AGE + 0.5)
        auth.set(name, dead=True)
        out = self.on.dig("+time=8", name)
        self.assertEqual(status(out), "SERVFAIL", out)
        self.assertEqual(section(out, "ANSWER"), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
