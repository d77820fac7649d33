"""RFC 5011 trust-anchor updates (issue 13), on the signed fake root of dnsfixture.signed with a
scripted KSK rollover: the root's NSD is restarted with each new root zone.

Outpost `tracking` starts from the test root's DS (KSK1) with auto_trust_anchor_file (its
state), a hold-down of 3 s and a probe every second (the test-only settings). Steps:
  1. KSK1 only: tracked as valid; answers validate (AD).
  2. KSK2 published beside KSK1 (both sign the keys): addpend, then valid once the hold-down is
     over (never valid before it: the state file's order of events).
  3. KSK1 revoked (published with REVOKE, signing the keys itself): revoked.
  4. KSK1 gone, KSK2 alone: new names still validate; so they do after a restart of Outpost
     (the state file, not the configured DS, names KSK2). An Outpost with only the static DS
     anchor (no RFC 5011) finds the same names bogus: what the test would see without it.
Also: an Outpost whose state file cannot be written warns and validates on (in memory); and
one started when the root's signatures begin ten days ahead (what a clock ten days slow sees)
answers SERVFAIL with EDE 8 and logs the probe's "is the system clock right?"."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "resolver"))

import harness  # noqa: E402
from dnsfixture import signed  # noqa: E402
from dnsserver import OutpostResolver, ede_codes, flags, status  # noqa: E402


def wait_for(what, check, outpost, timeout=60):
    deadline = time.time() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what + "; its log ends:\n" + outpost.outpost.log_text()[-4000:])
        time.sleep(0.2)


@unittest.skipUnless(signed.tools_present(), "bind9-utils (dnssec-signzone) not installed")
class Rfc5011Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not harness.in_private_netns():
            raise RuntimeError("run through netns_run.sh")
        import tempfile
        cls.tmp = tempfile.mkdtemp(prefix="Rfc5011Test-")
        cls.procs = harness.Processes()
        cls.h = signed.SignedHierarchy(os.path.join(cls.tmp, "dns"))
        cls.h.start()
        cls.hints = cls.h.write_hints()
        cls.state = os.path.join(cls.tmp, "trust-anchors.state")

    @classmethod
    def tearDownClass(cls):
        try:
            cls.procs.stop_all()
        finally:
            cls.h.stop()
            cls.h.cleanup()

    def start(self, name, dns_port, admin_port, proxy_port, tracking=True, state=None):
        extra = ""
        if tracking:
            extra += (f'auto_trust_anchor_file = "{state or self.state}"\nauto_trust_hold_down = 3\n'
                      'auto_trust_probe_interval = 1\n')
        return OutpostResolver(os.environ["OUTPOST_BIN"], self.procs, os.path.join(self.tmp, name), self.hints,
                               dns_port, admin_port, proxy_port, extra=extra, anchor=self.h.tree.anchor_file)

    def state_lines(self):
        try:
            with open(self.state) as f:
                return [l for l in f.read().splitlines() if l and not l.startswith(";")]
        except OSError:
            return []

    def key_state(self, key):
        """The state=... of KEY (a key file name, Kname+alg+tag) in the state file, or None."""
        tag = "tag=%d" % int(key.rsplit("+", 1)[1])
        for line in self.state_lines():
            if line.endswith(" " + tag):
                return line.split(" ; state=")[1].split()[0]
        return None

    def test_root_ksk_rollover(self):
        tree = self.h.tree
        ksk1 = tree.keys["."][0]
        on = self.start("tracking", 53, 9145, 3128)
        # 1. The first probe's validated DNSKEY set makes the configured anchor's key valid.
        wait_for("KSK1 valid", lambda: self.key_state(ksk1) == "valid", on)
        out = on.dig("www.signed.test.", "A", "+dnssec")
        self.assertEqual(status(out), "NOERROR", out)
        self.assertIn("ad", flags(out))
        # A state file that cannot be written: a warning, and validation goes on (in memory).
        unwritable = self.start("unwritable", 5355, 9148, 3131, state="/proc/outpost-no-such-dir/trust-anchors")
        wait_for("the state write's warning", lambda: "could not write the state" in unwritable.outpost.log_text(),
                 unwritable)
        out = unwritable.dig("www.signed.test.", "A", "+dnssec")
        self.assertEqual(status(out), "NOERROR", out)
        self.assertIn("ad", flags(out))
        unwritable.stop()

        # 2. KSK2 published: pending during the hold-down, then valid.
        ksk2 = tree.new_root_ksk()
        self.h.serve_root(tree.root_with([ksk1, ksk2], "both"))
        wait_for("KSK2 addpend", lambda: self.key_state(ksk2) in ("addpend", "valid"), on)
        wait_for("KSK2 valid", lambda: self.key_state(ksk2) == "valid", on)
        log = on.outpost.log_text()
        added = log.find("addpend (new key, in hold-down)")
        trusted = log.find("valid (hold-down over)")
        self.assertTrue(0 <= added < trusted, log[-3000:])

        # 3. KSK1 revoked.
        revoked = tree.revoke(ksk1)
        self.h.serve_root(tree.root_with([revoked, ksk2], "revoked"))
        wait_for("KSK1 revoked", lambda: self.key_state(ksk1) == "revoked", on)
        self.assertIn("revoked", on.outpost.log_text())

        # 4. KSK2 alone. New names validate with the tracked key.
        self.h.serve_root(tree.root_with([ksk2], "ksk2"))
        out = on.dig("www.nsec3.test.", "A", "+dnssec")
        self.assertEqual(status(out), "NOERROR", out + on.outpost.log_text()[-6000:])
        self.assertIn("ad", flags(out))
        # A static anchor (KSK1's DS, no RFC 5011) finds the new root keys bogus.
        static = self.start("static", 5354, 9146, 3129, tracking=False)
        out = static.dig("www.signed.test.", "A", "+dnssec")
        self.assertEqual(status(out), "SERVFAIL", out)
        # A restart reads the state: KSK2 is the anchor, though the configuration names KSK1.
        on.outpost.stop()
        again = self.start("tracking-again", 53, 9147, 3130)
        out = again.dig("www.signed.test.", "A", "+dnssec")
        self.assertEqual(status(out), "NOERROR", out)
        self.assertIn("ad", flags(out))

        # 5. This host's clock ten days behind the signer's (the root signed with inception ten
        # days ahead, as a slow clock sees it): new names are bogus, EDE 8 (signature not yet
        # valid), and the trust-anchor probe's warning says to check the clock.
        self.h.serve_root(tree.root_with([ksk2], "future", sign_args=["-s", "now+864000", "-e", "now+2592000"]))
        again.stop()
        slow = self.start("slow-clock", 5356, 9149, 3132)
        wait_for("the clock warning", lambda: "is the system clock right?" in slow.outpost.log_text(), slow)
        self.assertIn("not yet valid at this host's time", slow.outpost.log_text())
        out = slow.dig("www.signed.test.", "A", "+dnssec")
        self.assertEqual(status(out), "SERVFAIL", out)
        self.assertIn(8, ede_codes(out), out)


if __name__ == "__main__":
    unittest.main()
