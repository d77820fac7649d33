"""A DNSSEC-signed fake hierarchy, signed at test time with BIND's dnssec-keygen,
dnssec-signzone and dnssec-dsfromkey (Debian bind9-utils), served by NSD through Hierarchy.

  127.0.0.2  "."            RSASHA256 (8), NSEC; its KSK is the trust anchor (anchor_file)
  127.0.0.3  "test."        ECDSAP256SHA256 (13), NSEC
  127.0.0.5  children of test.:
     signed.test.    ECDSAP384SHA384 (14), NSEC: www A, *.wild A, alias CNAME, deep.ent A
     nsec3.test.     ED25519 (15), NSEC3 (salt, 2 iterations): the same names
     unsigned.test.  not signed, no DS: insecure
     broken.test.    signed, www's A changed after signing: bogus (EDE 6)
     expired.test.   signatures expired in 2020: bogus (EDE 7)
     nokey.test.     its DS in test. matches no key of the zone: bogus (EDE 9)
     stripped.test.  signed, but the RRSIG over www's A removed: bogus (EDE 10)
     nonsec.test.    signed, but every NSEC (and its RRSIG) removed: a denial without proof (EDE 12)
     optout.test.    NSEC3 with opt-out; child.optout.test. delegated without DS and without
                     an NSEC3 of its own (covered by an opt-out span): insecure
  127.0.0.6  child.optout.test. (unsigned)
"""
import os
import subprocess
import time

import dnsfixture

SOA = "{z} 300 IN SOA ns.{z} admin.{z} 1 3600 600 86400 60\n"

CHILD_DATA = """www.{z} 300 IN A {a}
*.wild.{z} 300 IN A {w}
alias.{z} 300 IN CNAME www.{z}
deep.ent.{z} 300 IN A 192.0.2.99
txt.{z} 300 IN TXT "hello"
"""

# zone -> (algorithm, nsec3 args, data, server address)
CHILDREN = {
    "signed.test.": ("ECDSAP384SHA384", [], CHILD_DATA.format(z="signed.test.", a="192.0.2.1", w="192.0.2.9")),
    "nsec3.test.": ("ED25519", ["-3", "beef", "-H", "2"],
                    CHILD_DATA.format(z="nsec3.test.", a="192.0.2.2", w="192.0.2.10")),
    "broken.test.": ("ECDSAP256SHA256", [], "www.broken.test. 300 IN A 192.0.2.3\n"),
    "expired.test.": ("ECDSAP256SHA256", [], "www.expired.test. 300 IN A 192.0.2.4\n"),
    "nokey.test.": ("ECDSAP256SHA256", [], "www.nokey.test. 300 IN A 192.0.2.5\n"),
    "stripped.test.": ("ECDSAP256SHA256", [], "www.stripped.test. 300 IN A 192.0.2.11\n"),
    "nonsec.test.": ("ECDSAP256SHA256", [], "www.nonsec.test. 300 IN A 192.0.2.12\n"),
    "optout.test.": ("ECDSAP256SHA256", ["-3", "-", "-A"],
                     "www.optout.test. 300 IN A 192.0.2.6\nchild.optout.test. 300 IN NS ns.child.optout.test.\n"
                     "ns.child.optout.test. 300 IN A 127.0.0.6\n"),
}
UNSIGNED = {"unsigned.test.": "www.unsigned.test. 300 IN A 192.0.2.7\n"}
CHILD_ADDR = "127.0.0.5"
GRANDCHILD = ("child.optout.test.", "127.0.0.6", "www.child.optout.test. 300 IN A 192.0.2.8\n")


def tools_present():
    return all(subprocess.run(["sh", "-c", "command -v " + t], capture_output=True).returncode == 0
               for t in ("dnssec-keygen", "dnssec-signzone", "dnssec-dsfromkey"))


def _run(args, cwd):
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(args), p.stderr))
    return p.stdout


def _apex(zone, ns_addr):
    return SOA.format(z=zone) + "%s 300 IN NS ns.%s\nns.%s 300 IN A %s\n" % (zone, zone, zone, ns_addr)


class SignedTree:
    """Keys, signed zone texts ({address: {zone: text}}) and the anchor file, in WORKDIR."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "signing")
        os.makedirs(self.dir, exist_ok=True)
        self.zones = {}
        self.ds = {}  # zone -> DS lines for its parent
        self.keys = {}  # zone -> (KSK, ZSK) key file names (without .key), in self.dir

    def _keys(self, zone, alg):
        ksk = _run(["dnssec-keygen", "-q", "-a", alg, "-f", "KSK", zone], self.dir).strip()
        zsk = _run(["dnssec-keygen", "-q", "-a", alg, zone], self.dir).strip()
        return ksk, zsk

    def _sign(self, zone, alg, body, extra=(), ds_from=None):
        ksk, zsk = self._keys(zone, alg)
        self.keys[zone] = (ksk, zsk)
        path = os.path.join(self.dir, zone + "zone")
        with open(path, "w") as f:
            f.write("$ORIGIN %s\n%s" % (zone, body))
            for k in (ksk, zsk):
                with open(os.path.join(self.dir, k + ".key")) as kf:
                    f.write(kf.read())
        _run(["dnssec-signzone", "-P", "-O", "full", "-q", "-o", zone, "-N", "keep", "-K", self.dir,
              "-f", path + ".signed"] + list(extra) + [path, ksk + ".key", zsk + ".key"], self.dir)
        with open(path + ".signed") as f:
            text = f.read()
        self.ds[zone] = _run(["dnssec-dsfromkey", "-a", "SHA-256", (ds_from or ksk) + ".key"], self.dir)
        return text, ksk

    def build(self):
        served = {CHILD_ADDR: {}, GRANDCHILD[1]: {}}
        served[GRANDCHILD[1]][GRANDCHILD[0]] = _apex(GRANDCHILD[0], GRANDCHILD[1]) + GRANDCHILD[2]
        for zone, body in UNSIGNED.items():
            served[CHILD_ADDR][zone] = _apex(zone, CHILD_ADDR) + body
        for zone, (alg, extra, body) in CHILDREN.items():
            args = list(extra)
            if zone == "expired.test.":
                args += ["-s", "20200101000000", "-e", "20200201000000"]
            stranger = None
            if zone == "nokey.test.":
                stranger = _run(["dnssec-keygen", "-q", "-a", alg, "-f", "KSK", zone], self.dir).strip()
            text, _ = self._sign(zone, alg, _apex(zone, CHILD_ADDR) + body, args, ds_from=stranger)
            if zone == "broken.test.":
                text = text.replace("IN A\t\t192.0.2.3", "IN A\t\t192.0.2.66")
                assert "192.0.2.66" in text, "could not break broken.test."
            if zone == "stripped.test.":
                text = "\n".join(l for l in text.splitlines() if not l.startswith("www.stripped.test.")
                                  or "RRSIG\tA " not in l)
            if zone == "nonsec.test.":
                text = "\n".join(l for l in text.splitlines() if "NSEC" not in l)
            served[CHILD_ADDR][zone] = text
        tld = SOA.format(z="test.") + "test. 300 IN NS ns1.test.\nns1.test. 300 IN A 127.0.0.3\n"
        for zone in list(CHILDREN) + list(UNSIGNED):
            tld += "%s 300 IN NS ns.%s\nns.%s 300 IN A %s\n" % (zone, zone, zone, CHILD_ADDR)
            if zone in self.ds:
                tld += self.ds[zone]
        tld_text, _ = self._sign("test.", "ECDSAP256SHA256", tld)
        root = (SOA.format(z=".").replace("ns..", "ns.root.").replace("admin..", "admin.root.") +
                ". 300 IN NS ns.root.\nns.root. 300 IN A 127.0.0.2\ntest. 300 IN NS ns1.test.\n"
                "ns1.test. 300 IN A 127.0.0.3\n" + self.ds["test."])
        self.root_body = root
        root_text, root_ksk = self._sign(".", "RSASHA256", root)
        served["127.0.0.2"] = {".": root_text}
        served["127.0.0.3"] = {"test.": tld_text}
        self.zones = served
        self.anchor_file = os.path.join(self.dir, "root.anchor")
        with open(self.anchor_file, "w") as f:
            f.write(self.ds["."])
        with open(os.path.join(self.dir, root_ksk + ".key")) as kf:
            self.anchor_dnskey = [l for l in kf.read().splitlines() if l and not l.startswith(";")][0]
        return self


    # ---- a root KSK rollover (RFC 5011 tests)

    def new_root_ksk(self):
        """A new RSASHA256 KSK for the root (not published yet); its key file name."""
        return _run(["dnssec-keygen", "-q", "-a", "RSASHA256", "-f", "KSK", "."], self.dir).strip()

    def revoke(self, key):
        """A copy of KEY with the REVOKE bit set (dnssec-revoke); the new key file name."""
        before = set(os.listdir(self.dir))
        _run(["dnssec-revoke", "-K", self.dir, key], self.dir)
        made = [f for f in set(os.listdir(self.dir)) - before if f.endswith(".key")]
        assert len(made) == 1, made
        return made[0][:-len(".key")]

    def root_with(self, ksks, phase, sign_args=()):
        """The root zone (as built) publishing KSKS (key file names) and its ZSK, each KSK
        signing the DNSKEY set: the signed text, for SignedHierarchy.serve_root. SIGN_ARGS:
        more dnssec-signzone options (e.g. -s/-e for the signatures' validity)."""
        d = os.path.join(self.dir, "root-" + phase)
        os.makedirs(d, exist_ok=True)
        keys = list(ksks) + [self.keys["."][1]]
        path = os.path.join(d, "root.zone")
        with open(path, "w") as f:
            f.write("$ORIGIN .\n" + self.root_body)
            for k in keys:
                with open(os.path.join(self.dir, k + ".key")) as kf:
                    f.write(kf.read())
                for ext in (".key", ".private"):
                    with open(os.path.join(self.dir, k + ext)) as src, open(os.path.join(d, k + ext), "w") as dst:
                        dst.write(src.read())
        _run(["dnssec-signzone", "-P", "-O", "full", "-q", "-o", ".", "-N", "keep", "-K", d, "-f", path + ".signed"]
             + list(sign_args) + [path] + [k + ".key" for k in keys], d)
        with open(path + ".signed") as f:
            return f.read()


class SignedHierarchy(dnsfixture.Hierarchy):
    """The signed tree on NSD instead of the unsigned ZONES (the helper servers still run)."""

    def __init__(self, workdir=None):
        super().__init__(workdir)
        self.tree = SignedTree(self.workdir).build()
        self.zones = self.tree.zones

    def serve_root(self, text):
        """The root's NSD (127.0.0.2) serves TEXT as the root zone from now on: the zone file is
        rewritten and NSD reloads it (SIGHUP) without going away, and this returns once it
        serves the new DNSKEY set."""
        addr = "127.0.0.2"
        d = os.path.join(self.workdir, "nsd-" + addr)
        path = os.path.join(d, "zone0.zone")
        with open(path, "w") as f:
            f.write("$ORIGIN .\n" + text)
        st = os.stat(path)
        os.utime(path, (st.st_atime + 2, st.st_mtime + 2))  # a changed mtime, whatever the clock's grain
        self.zones[addr] = {".": text}
        with open(os.path.join(d, "nsd.pid")) as f:
            os.kill(int(f.read().strip()), 1)
        want = sorted(f[4] + " " + "".join(f[7:])[-16:] for f in (l.split() for l in text.splitlines())
                      if len(f) > 7 and f[3] == "DNSKEY")
        deadline = time.time() + 20
        while time.time() < deadline:
            out = subprocess.run(["dig", "@" + addr, "+norec", "+short", "+time=1", "+tries=1", ".", "DNSKEY"],
                                 capture_output=True, text=True).stdout
            got = sorted(f[0] + " " + "".join(f[3:])[-16:] for f in (l.split() for l in out.splitlines()) if len(f) > 3)
            if got == want:
                return
            time.sleep(0.1)
        raise RuntimeError("NSD on %s did not load the new root zone" % addr)
