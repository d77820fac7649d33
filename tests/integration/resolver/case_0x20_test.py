"""0x20 (issue 13): with use_0x20 the resolver sends query names in random case and takes a
reply only if its question repeats that case byte for byte. Two scripted servers misbehave:
lower.test.'s server answers correctly but repeats the question in lower case (a server that
does not keep the case: its replies are refused until the resolver falls back to asking it
without 0x20); flip.test.'s server is shadowed by a spoofer that knows the ID but not the
case (its forged reply, question in lower case, comes first). Two Outposts, with and without
0x20; NSD's servers keep the case, so the rest of the tree resolves as usual."""
import os
import socket
import sys
import threading
import time
import unittest

os.environ["OUTPOST_BIN"] = sys.argv.pop(1)

from dnsfixture import Query, ScriptedServer, rr, zone_reply  # noqa: E402
from dnsserver import OutpostPairTest, section, status  # noqa: E402

LOWER, FLIP = "127.0.0.62", "127.0.0.63"
GOOD, POISON = "192.0.2.82", "6.6.6.6"
FLIP_NAME = "wwwlongerlabelname.flip.test."  # 20 letters: a random case is never all lower
EXTRA_ZONES = {"127.0.0.3": {"test.": """
lower.test. 3600 IN NS ns.lower.test.
ns.lower.test. 3600 IN A %s
flip.test. 3600 IN NS ns.flip.test.
ns.flip.test. 3600 IN A %s
""" % (LOWER, FLIP)}}


def spelled(q):
    """The question name as it came, case kept."""
    labels, i, p = [], 0, q.question
    while p[i]:
        labels.append(p[i + 1:i + 1 + p[i]].decode())
        i += 1 + p[i]
    return ".".join(labels) + "."


def lowered(q):
    """Q with its question name in lower case (what a server that loses the case sends back)."""
    q.question = q.question[:-4].lower() + q.question[-4:]
    return q


class LowerCaseServer:
    """lower.test.: correct answers whose question comes back in lower case; logs each name as
    it was asked."""

    def __init__(self):
        self.asked = []
        self.lock = threading.Lock()

    def __call__(self, q):
        with self.lock:
            self.asked.append(spelled(q))
        if q.type == 1 and q.name not in ("lower.test.", "ns.lower.test."):
            return lowered(q).reply(answer=[rr(q.name, "A", 300, "192.0.2.81")])
        return lowered(q).reply() if q.type != 1 else zone_reply(lowered(q), "lower.test.")

    def spellings(self, name):
        with self.lock:
            return [n for n in self.asked if n.lower() == name]


def flip_answer(q):
    """flip.test.'s real answers: GOOD for every A question, the zone's data otherwise."""
    if q.type != 1 or q.name in ("flip.test.", "ns.flip.test."):
        return zone_reply(q, "flip.test.")
    return q.reply(answer=[rr(q.name, "A", 300, GOOD)])


class SpoofingSocket:
    """Stands in for a scripted server's UDP socket: before each real reply a spoofer who knows
    address, port and ID but not the case sends a forged copy (question in lower case, POISON
    for GOOD)."""

    def __init__(self, sock):
        self.sock = sock

    def recvfrom(self, size):
        return self.sock.recvfrom(size)

    def close(self):
        self.sock.close()

    def sendto(self, reply, peer):
        q = Query(reply)
        rest = reply[12 + len(q.question):]
        forged = reply[:12] + lowered(q).question + rest
        self.sock.sendto(forged.replace(socket.inet_aton(GOOD), socket.inet_aton(POISON)), peer)
        time.sleep(0.02)
        self.sock.sendto(reply, peer)


class Case0x20Test(OutpostPairTest):
    EXTRA_ZONES = EXTRA_ZONES
    ON_EXTRA = "use_0x20 = true\n"

    @classmethod
    def make_servers(cls):
        cls.lower = LowerCaseServer()
        flip = ScriptedServer(FLIP, flip_answer)
        flip.sockets[0] = SpoofingSocket(flip.sockets[0])
        return [ScriptedServer(LOWER, cls.lower), flip]

    def mismatches(self, o):
        return o.metric("outpost_dns_upstream_bad_replies_total", reason="case_mismatch")

    def addresses(self, out):
        self.assertEqual(status(out), "NOERROR", out)
        return [r[4] for r in section(out, "ANSWER")]

    def test_servers_that_keep_the_case_resolve_as_usual(self):
        before = self.mismatches(self.on)
        out = self.on.dig("www.a.test")
        self.assertEqual(self.addresses(out), ["192.0.2.1"])
        # The names come back as asked, not in the random case sent upstream.
        self.assertEqual([r[0] for r in section(out, "ANSWER")], ["www.a.test."])
        out = self.on.dig("chain.a.test")
        self.assertEqual([r[0] for r in section(out, "ANSWER")], ["chain.a.test.", "www.b.example.", "final.a.test."])
        self.assertEqual(self.mismatches(self.on), before)

    def test_forged_reply_in_the_wrong_case_is_refused(self):
        before = self.mismatches(self.on)
        self.assertEqual(self.addresses(self.on.dig(FLIP_NAME)), [GOOD])
        self.assertGreaterEqual(self.mismatches(self.on), before + 1)
        # Without 0x20 the forged reply, first to arrive, is believed.
        before = self.mismatches(self.off)
        self.assertEqual(self.addresses(self.off.dig(FLIP_NAME)), [POISON])
        self.assertEqual(self.mismatches(self.off), before)

    def test_reload_turns_0x20_on_and_off(self):
        # SIGHUP applies use_0x20 like the other [dns] settings (serve-stale and prefetch go
        # the same way: ResolverConfig, posted to every worker).
        self.off.reload("use_0x20 = true\n")
        try:
            self.assertEqual(self.addresses(self.off.dig("reload" + FLIP_NAME)), [GOOD])
            self.assertGreaterEqual(self.mismatches(self.off), 1)
        finally:
            self.off.reload("")
        self.assertEqual(self.addresses(self.off.dig("again" + FLIP_NAME)), [POISON])

    def test_server_that_loses_the_case_is_refused_then_asked_without(self):
        name = "www.lower.test."
        before = self.mismatches(self.on)
        self.assertEqual(self.addresses(self.on.dig("+time=8", name)), ["192.0.2.81"])
        asked = self.lower.spellings(name)
        # Twice in random case (both replies refused and counted), then as the client asked.
        self.assertEqual(len(asked), 3, asked)
        self.assertTrue(any(n != name for n in asked[:2]), asked)
        self.assertEqual(asked[2], name)
        self.assertEqual(self.mismatches(self.on), before + 2)
        # The fallback is remembered for the server: the next name goes out without 0x20.
        other = "mail.lower.test."
        started = time.monotonic()
        self.assertEqual(self.addresses(self.on.dig(other)), ["192.0.2.81"])
        self.assertLess(time.monotonic() - started, 0.3)
        self.assertEqual(self.lower.spellings(other), [other])
        self.assertEqual(self.mismatches(self.on), before + 2)
        # Without 0x20 the server is fine from the start.
        self.assertEqual(self.addresses(self.off.dig("off." + name)), ["192.0.2.81"])
        self.assertEqual(self.lower.spellings("off." + name), ["off." + name])


if __name__ == "__main__":
    unittest.main(verbosity=2)
