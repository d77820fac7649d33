"""DNSSEC validation (issue 13) on a signed fake hierarchy served by NSD (dnsfixture.signed:
root, test., signed and NSEC3 children, an unsigned child, a broken signature, expired
RRSIGs, a DS that matches no key, an NSEC3 opt-out zone with an unsigned child), signed at
test time by dnssec-signzone, with the test root's KSK as the only trust anchor.

Two Outposts: `on` validates by default, given nothing but trust_anchor_file = the test root's
DS (and the fake root's hints), `off` has validation turned off. Checked: AD only on validated answers and only
to clients that set AD or DO; insecure answers without AD; bogus answers SERVFAIL with the
Extended DNS Error that says why (6, 7, 9), and answered anyway with CD; NXDOMAIN, NODATA,
wildcards, empty non-terminals and CNAMEs proven by NSEC and by NSEC3; cached answers keep
their verdict; where Unbound is installed it gets the same anchor and must agree on every
question (rcode and AD)."""
import base64
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "resolver"))

from dnsfixture import signed  # noqa: E402
from dnsserver import OutpostPairTest, dig, ede_codes, flags, section, status  # noqa: E402

UNBOUND_ADDR = "127.0.0.53"

# (name, type, rcode, AD, first answer value or None)
SECURE_CASES = [
    ("www.signed.test.", "A", "NOERROR", True, "192.0.2.1"),
    ("www.nsec3.test.", "A", "NOERROR", True, "192.0.2.2"),
    ("nothere.signed.test.", "A", "NXDOMAIN", True, None),
    ("nothere.nsec3.test.", "A", "NXDOMAIN", True, None),
    ("www.signed.test.", "TXT", "NOERROR", True, None),
    ("www.nsec3.test.", "TXT", "NOERROR", True, None),
    ("host.wild.signed.test.", "A", "NOERROR", True, "192.0.2.9"),
    ("host.wild.nsec3.test.", "A", "NOERROR", True, "192.0.2.10"),
    ("host.wild.signed.test.", "AAAA", "NOERROR", True, None),
    ("host.wild.nsec3.test.", "AAAA", "NOERROR", True, None),
    ("ent.signed.test.", "A", "NOERROR", True, None),
    ("ent.nsec3.test.", "A", "NOERROR", True, None),
    ("alias.signed.test.", "A", "NOERROR", True, "www.signed.test."),
    ("alias.nsec3.test.", "A", "NOERROR", True, "www.nsec3.test."),
    ("signed.test.", "DNSKEY", "NOERROR", True, None),
    ("nsec3.test.", "DS", "NOERROR", True, None),
    ("nothere.test.", "A", "NXDOMAIN", True, None),
    ("www.optout.test.", "A", "NOERROR", True, "192.0.2.6"),
]
INSECURE_CASES = [
    ("www.unsigned.test.", "A", "NOERROR", False, "192.0.2.7"),
    ("nothere.unsigned.test.", "A", "NXDOMAIN", False, None),
    ("www.child.optout.test.", "A", "NOERROR", False, "192.0.2.8"),
]
# (name, EDE code, the value CD gets)
BOGUS_CASES = [
    ("www.broken.test.", 6, "192.0.2.66"),
    ("www.expired.test.", 7, "192.0.2.4"),
    ("www.nokey.test.", 9, "192.0.2.5"),
    ("www.stripped.test.", 10, "192.0.2.11"),
]
# Denials without their NSEC proof: bogus (EDE 12), whatever CD says of the data.
UNPROVEN_CASES = [("nothere.nonsec.test.", "A", "NXDOMAIN"), ("www.nonsec.test.", "TXT", "NOERROR")]


def nsec3_hash(name, salt, iterations):
    """RFC 5155 section 5: the base32hex (upper case) SHA-1 hash of NAME's lower-case wire form."""
    wire = b"".join(bytes([len(l)]) + l.encode() for l in name.lower().strip(".").split(".")) + b"\0"
    h = hashlib.sha1(wire + salt).digest()
    for _ in range(iterations):
        h = hashlib.sha1(h + salt).digest()
    return base64.b32hexencode(h).decode()


def first_value(out):
    rows = section(out, "ANSWER")
    return rows[0][4] if rows else None


class Unbound:
    """Unbound as a validating peer on UNBOUND_ADDR:53 with the same hints and anchor."""

    def __init__(self, workdir, hints, anchor):
        self.workdir, self.hints, self.anchor, self.proc = workdir, hints, anchor, None

    def start(self):
        workdir = self.workdir
        os.makedirs(workdir, exist_ok=True)
        conf = os.path.join(workdir, "unbound.conf")
        with open(conf, "w") as f:
            f.write(f"""server:
  interface: {UNBOUND_ADDR}
  port: 53
  do-ip6: no
  do-not-query-localhost: no
  chroot: ""
  username: ""
  directory: "{workdir}"
  pidfile: "{workdir}/unbound.pid"
  use-syslog: no
  logfile: "{workdir}/unbound.log"
  verbosity: 1
  root-hints: "{self.hints}"
  trust-anchor-file: "{self.anchor}"
  trust-anchor-signaling: no
  root-key-sentinel: no
  local-zone: "test." nodefault
  module-config: "validator iterator"
  access-control: 127.0.0.0/8 allow
  ede: yes
remote-control:
  control-enable: no
""")
        self.proc = subprocess.Popen(["unbound", "-d", "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while "status:" not in dig(UNBOUND_ADDR, "ns.root.", "A"):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("unbound did not start; see " + workdir)
            time.sleep(0.2)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@unittest.skipUnless(signed.tools_present(), "bind9-utils (dnssec-signzone) not installed")
class DnssecTest(OutpostPairTest):
    """`on` validates with the test root's anchor (the default); `off` has validation off."""

    @classmethod
    def make_hierarchy(cls, workdir):
        return signed.SignedHierarchy(workdir)

    @classmethod
    def on_anchor(cls):
        return cls.h.tree.anchor_file

    @classmethod
    def make_servers(cls):
        cls.unbound = None
        if shutil.which("unbound"):
            cls.unbound = Unbound(os.path.join(cls.tmp, "unbound"), cls.h.write_hints(), cls.h.tree.anchor_file)
            return [cls.unbound]
        return []

    def check(self, out, name, rcode, ad, value):
        self.assertEqual(status(out), rcode, out)
        self.assertEqual("ad" in flags(out), ad, out)
        if value is not None:
            self.assertEqual(first_value(out), value, out)

    def test_secure_answers_and_denials_get_ad(self):
        for name, qtype, rcode, ad, value in SECURE_CASES:
            with self.subTest(name=name, type=qtype):
                self.check(self.on.dig(name, qtype, "+dnssec"), name, rcode, ad, value)
                # From the cache: the same verdict.
                self.check(self.on.dig(name, qtype, "+dnssec"), name, rcode, ad, value)

    def test_ad_only_to_clients_that_ask(self):
        out = self.on.dig("www.signed.test.", "A", "+noadflag")
        self.check(out, "www.signed.test.", "NOERROR", False, "192.0.2.1")
        out = self.on.dig("www.signed.test.", "A", "+adflag")
        self.check(out, "www.signed.test.", "NOERROR", True, "192.0.2.1")
        # Validation off: never AD.
        out = self.off.dig("www.signed.test.", "A", "+dnssec")
        self.check(out, "www.signed.test.", "NOERROR", False, "192.0.2.1")

    def test_insecure_answers_without_ad(self):
        for name, qtype, rcode, ad, value in INSECURE_CASES:
            with self.subTest(name=name):
                self.check(self.on.dig(name, qtype, "+dnssec"), name, rcode, ad, value)
                self.check(self.on.dig(name, qtype, "+dnssec"), name, rcode, ad, value)

    def test_bogus_is_servfail_with_ede_and_cd_answers(self):
        for name, code, value in BOGUS_CASES:
            with self.subTest(name=name):
                for _ in range(2):  # the second from the bogus cache
                    out = self.on.dig(name, "A", "+dnssec")
                    self.assertEqual(status(out), "SERVFAIL", out)
                    self.assertIn(code, ede_codes(out), out)
                out = self.on.dig(name, "A", "+dnssec", "+cd")
                self.check(out, name, "NOERROR", False, value)
                # Validation off: the data as served.
                self.check(self.off.dig(name, "A"), name, "NOERROR", False, value)

    def test_default_config_validates(self):
        """The embedded default (`outpost --print-default-config`, as a fresh install runs it)
        with nothing changed but what a test must: the fake root's hints, its trust anchor in
        place of the real root's, ports and logs. A bogus answer is SERVFAIL with its Extended
        DNS Error; a secure one has AD; `on` (given no dnssec_validation key) does the same."""
        import harness
        text = subprocess.run([os.environ["OUTPOST_BIN"], "--print-default-config"], capture_output=True, text=True,
                              check=True).stdout
        d = os.path.join(self.tmp, "default")
        os.makedirs(d)
        for old, new in (('hints = ""', f'hints = "{self.h.write_hints()}"'),
                         ('trust_anchor_file = ""', f'trust_anchor_file = "{self.h.tree.anchor_file}"'),
                         ('listen = ["127.0.0.1:53"]', 'listen = ["127.0.0.1:5355"]'),
                         ('listen = ["127.0.0.1:3128"]', 'listen = ["127.0.0.1:3130"]'),
                         ('access_log = "-"', 'access_log = ""'),
                         ('file = ""', f'file = "{d}/outpost.log"')):
            self.assertEqual(text.count("\n" + old + "\n"), 1, old)
            text = text.replace("\n" + old + "\n", "\n" + new + "\n")
        conf = os.path.join(d, "outpost.toml")
        with open(conf, "w") as f:
            f.write(text)
        p = self.procs.start([os.environ["OUTPOST_BIN"], "--config", conf], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        harness.wait_port(5355, proc=p)
        try:
            out = dig("127.0.0.1", "www.broken.test.", "A", port=5355)
            self.assertEqual(status(out), "SERVFAIL", out)
            self.assertIn(6, ede_codes(out), out)
            self.check(dig("127.0.0.1", "www.signed.test.", "A", "+adflag", port=5355), "", "NOERROR", True,
                       "192.0.2.1")
        finally:
            p.terminate()
            self.assertEqual(p.wait(timeout=15), 0)
        with open(self.on.outpost.config_path) as f:
            self.assertNotIn("dnssec_validation", f.read())
        out = self.on.dig("www.broken.test.", "A")
        self.assertEqual(status(out), "SERVFAIL", out)
        self.assertIn(6, ede_codes(out), out)

    def test_aggressive_use_of_nsec(self):
        """RFC 8198: a validated NSEC span answers other names in it without asking upstream."""
        self.check(self.on.dig("nothere.signed.test.", "A", "+dnssec"), "", "NXDOMAIN", True, None)
        self.check(self.on.dig("www.signed.test.", "TXT", "+dnssec"), "", "NOERROR", True, None)
        upstream = self.on.metric("outpost_dns_upstream_queries_total", transport="udp")
        synthesized = self.on.metric("outpost_dns_dnssec_synthesized_total")
        # deep.ent.signed.test. < these < ns.signed.test.: the NSEC that proved "nothere" covers them.
        for name in ("mmm.signed.test.", "no.signed.test.", "deeper.nothere.signed.test."):
            out = self.on.dig(name, "A", "+dnssec")
            self.check(out, name, "NXDOMAIN", True, None)
            self.assertEqual(section(out, "AUTHORITY")[0][3], "SOA", out)
        out = self.on.dig("www.signed.test.", "MX", "+dnssec")  # the NSEC at www has no MX
        self.check(out, "www.signed.test.", "NOERROR", True, None)
        self.assertEqual(section(out, "ANSWER"), [], out)
        self.assertEqual(self.on.metric("outpost_dns_upstream_queries_total", transport="udp"), upstream)
        self.assertEqual(self.on.metric("outpost_dns_dnssec_synthesized_total"), synthesized + 4)
        # A name the span does not cover still goes upstream.
        self.check(self.on.dig("nx1.signed.test.", "A", "+dnssec"), "", "NXDOMAIN", True, None)
        self.assertGreater(self.on.metric("outpost_dns_upstream_queries_total", transport="udp"), upstream)
        self.assertGreater(self.on.metric("outpost_dns_dnssec_verdicts_total", verdict="secure"), 0)

    def test_aggressive_wildcard_answers(self):
        """RFC 8198 section 5.3: once a wildcard expansion has been validated, another name the
        same NSEC (or NSEC3) proves absent below the wildcard's parent is answered with the
        wildcard's data (AD, its RRSIG, the proof) without asking upstream; the answer is what
        Unbound gives (from upstream or its own cache). A name the proof does not cover, or one
        whose closer encloser exists, still goes upstream."""
        first = self.on.dig("host.wild.signed.test.", "A", "+dnssec")
        self.check(first, "", "NOERROR", True, "192.0.2.9")
        nsec3_first = self.on.dig("host.wild.nsec3.test.", "A", "+dnssec")
        self.check(nsec3_first, "", "NOERROR", True, "192.0.2.10")
        # NSEC3: names whose hashes fall in the span that proved host.wild.nsec3.test absent.
        span = [r for r in section(nsec3_first, "AUTHORITY") if r[3] == "NSEC3"]
        self.assertEqual(len(span), 1, nsec3_first)
        low, high = span[0][0].split(".")[0].upper(), span[0][8].upper()
        salt, iterations = bytes.fromhex(span[0][7]), int(span[0][6])

        def covered(name):
            h = nsec3_hash(name, salt, iterations)
            return low < h < high if low < high else (h > low or h < high)
        nsec3_names = [n for n in ("syn%d.wild.nsec3.test." % i for i in range(400)) if covered(n)][:2]
        self.assertEqual(len(nsec3_names), 2)
        upstream = self.on.metric("outpost_dns_upstream_queries_total", transport="udp")
        synthesized = self.on.metric("outpost_dns_dnssec_synthesized_total")
        cases = [("syn.wild.signed.test.", "192.0.2.9"), ("a.b.wild.signed.test.", "192.0.2.9")]
        cases += [(n, "192.0.2.10") for n in nsec3_names]
        for name, value in cases:
            with self.subTest(name=name):
                out = self.on.dig(name, "A", "+dnssec")
                self.check(out, name, "NOERROR", True, value)
                self.assertEqual({r[3] for r in section(out, "ANSWER")}, {"A", "RRSIG"}, out)
                self.assertEqual(section(out, "ANSWER")[0][0].lower(), name, out)
                proof = "NSEC3" if "nsec3" in name else "NSEC"
                self.assertEqual({r[3] for r in section(out, "AUTHORITY")}, {proof, "RRSIG"}, out)
                plain = self.on.dig(name, "A")  # dig sets AD: AD back, but no RRSIG or proof
                self.check(plain, name, "NOERROR", True, value)
                self.assertEqual({r[3] for r in section(plain, "ANSWER")}, {"A"}, plain)
                self.assertEqual(section(plain, "AUTHORITY"), [], plain)
                if self.unbound:
                    theirs = dig(UNBOUND_ADDR, name, "A", "+dnssec")
                    self.assertEqual((status(out), "ad" in flags(out), first_value(out)),
                                     (status(theirs), "ad" in flags(theirs), first_value(theirs)),
                                     "ours:\n%s\nunbound:\n%s" % (out, theirs))
                    for part in ("ANSWER", "AUTHORITY"):
                        self.assertEqual({r[3] for r in section(out, part)}, {r[3] for r in section(theirs, part)},
                                         "%s\nours:\n%s\nunbound:\n%s" % (part, out, theirs))
        self.assertEqual(self.on.metric("outpost_dns_upstream_queries_total", transport="udp"), upstream)
        self.assertEqual(self.on.metric("outpost_dns_dnssec_synthesized_total"), synthesized + 2 * len(cases))
        # A name outside the NSEC3 span goes upstream; a type the wildcard has no RRset of gets
        # no wildcard data (NODATA); nor does a name below an existing one (deep.ent.signed.test
        # is its closest encloser, not the wildcard's parent).
        outside = next(n for n in ("out%d.wild.nsec3.test." % i for i in range(400)) if not covered(n))
        self.check(self.on.dig(outside, "A", "+dnssec"), outside, "NOERROR", True, "192.0.2.10")
        self.assertGreater(self.on.metric("outpost_dns_upstream_queries_total", transport="udp"), upstream)
        out = self.on.dig("syn2.wild.signed.test.", "TXT", "+dnssec")
        self.check(out, "", "NOERROR", True, None)
        self.assertEqual(section(out, "ANSWER"), [], out)
        self.check(self.on.dig("x.deep.ent.signed.test.", "A", "+dnssec"), "", "NXDOMAIN", True, None)

    def test_rrsigs_and_proofs_only_to_do_clients(self):
        """RFC 4035 3.2.1: DO clients get the RRSIGs and the NSEC/NSEC3 proofs, from upstream,
        from the cache and in synthesized denials alike; others get none."""
        cases = [("www.signed.test.", "A", {"A", "RRSIG"}, set()),
                 ("alias.nsec3.test.", "A", {"CNAME", "A", "RRSIG"}, set()),
                 ("nothere.signed.test.", "A", set(), {"SOA", "RRSIG", "NSEC"}),
                 ("nothere.nsec3.test.", "A", set(), {"SOA", "RRSIG", "NSEC3"}),
                 ("www.nsec3.test.", "MX", set(), {"SOA", "RRSIG", "NSEC3"}),
                 ("mmz.signed.test.", "A", set(), {"SOA", "RRSIG", "NSEC"}),  # synthesized (RFC 8198)
                 ("host.wild.nsec3.test.", "A", {"A", "RRSIG"}, {"NSEC3", "RRSIG"}),  # the expansion's proof
                 ("www.unsigned.test.", "A", {"A"}, set())]
        for name, qtype, answer, authority in cases:
            with self.subTest(name=name, type=qtype):
                for _ in range(2):  # the second from the cache
                    out = self.on.dig(name, qtype, "+dnssec")
                    self.assertEqual({r[3] for r in section(out, "ANSWER")}, answer, out)
                    self.assertEqual({r[3] for r in section(out, "AUTHORITY")}, authority, out)
                out = self.on.dig(name, qtype)
                types = {r[3] for r in section(out, "ANSWER") + section(out, "AUTHORITY")}
                self.assertFalse(types & {"RRSIG", "NSEC", "NSEC3"}, out)

    def test_denial_without_proof_is_bogus(self):
        # The zone is fine otherwise.
        self.check(self.on.dig("www.nonsec.test.", "A", "+dnssec"), "", "NOERROR", True, "192.0.2.12")
        for name, qtype, rcode in UNPROVEN_CASES:
            with self.subTest(name=name, type=qtype):
                out = self.on.dig(name, qtype, "+dnssec")
                self.assertEqual(status(out), "SERVFAIL", out)
                self.assertIn(12, ede_codes(out), out)
                self.check(self.on.dig(name, qtype, "+dnssec", "+cd"), name, rcode, False, None)

    def test_domain_insecure(self):
        """domain_insecure (Unbound's): questions at or below those names are answered without
        validation (no AD, never bogus), everything else is still validated. Applied to `off` by
        a reload (which also drops its kept replies), then taken back."""
        anchor = self.h.tree.anchor_file
        self.off.reload('domain_insecure = ["broken.test", "nonsec.test"]\n', anchor=anchor)
        try:
            for _ in range(2):  # resolved, then from the cache (and the kept reply)
                self.check(self.off.dig("www.broken.test.", "A", "+dnssec"), "www.broken.test.", "NOERROR", False,
                           "192.0.2.66")
                self.check(self.off.dig("nothere.nonsec.test.", "A", "+dnssec"), "nothere.nonsec.test.", "NXDOMAIN",
                           False, None)
                self.check(self.off.dig("www.signed.test.", "A", "+dnssec"), "www.signed.test.", "NOERROR", True,
                           "192.0.2.1")
                out = self.off.dig("www.expired.test.", "A", "+dnssec")
                self.assertEqual(status(out), "SERVFAIL", out)
            # Without it, questions there are validated again (answers already cached as
            # insecure stay so until they expire or are flushed: a question not asked yet).
            self.off.reload("", anchor=anchor)
            self.assertEqual(status(self.off.dig("www.nonsec.test.", "TXT")), "SERVFAIL")
        finally:
            self.off.reload("", anchor=None)

    def test_same_verdicts_as_unbound(self):
        if not self.unbound:
            self.skipTest("unbound not installed")
        cases = [(n, t) for n, t, *_ in SECURE_CASES + INSECURE_CASES] + [(n, "A") for n, *_ in BOGUS_CASES]
        cases += [(n, t) for n, t, _ in UNPROVEN_CASES]
        for name, qtype in cases:
            with self.subTest(name=name, type=qtype):
                ours = self.on.dig(name, qtype, "+dnssec")
                theirs = dig(UNBOUND_ADDR, name, qtype, "+dnssec")
                self.assertEqual(status(ours), status(theirs), "ours:\n%s\nunbound:\n%s" % (ours, theirs))
                self.assertEqual("ad" in flags(ours), "ad" in flags(theirs), "ours:\n%s\nunbound:\n%s" % (ours, theirs))
                # The same kinds of records (RRSIGs, proofs) in each section.
                for part in ("ANSWER", "AUTHORITY"):
                    self.assertEqual({r[3] for r in section(ours, part)}, {r[3] for r in section(theirs, part)},
                                     "%s\nours:\n%s\nunbound:\n%s" % (part, ours, theirs))


if __name__ == "__main__":
    unittest.main(verbosity=2)
