"""Seeds for dnssec_fuzz: real signed responses (DO set) from the signed fake hierarchy
(tests/integration/dnsfixture/signed.py) — DNSKEY and DS sets with RRSIGs, signed answers,
NSEC and NSEC3 denials, a wildcard. Run as root in a private network namespace:
  cd tests/integration && ./netns_run.sh python3 ../fuzz/corpus/make_dnssec_seeds.py"""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "integration"))
from dnsfixture import encode_name, signed  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dnssec_fuzz")
QUESTIONS = [  # (file, server, name, type)
    ("root_dnskey", "127.0.0.2", ".", 48), ("tld_ds", "127.0.0.2", "test.", 43),
    ("signed_dnskey", "127.0.0.5", "signed.test.", 48), ("signed_a", "127.0.0.5", "www.signed.test.", 1),
    ("nsec_nxdomain", "127.0.0.5", "nothere.signed.test.", 1), ("nsec_nodata", "127.0.0.5", "www.signed.test.", 16),
    ("nsec_wildcard", "127.0.0.5", "a.wild.signed.test.", 1), ("nsec3_nxdomain", "127.0.0.5", "nothere.nsec3.test.", 1),
    ("nsec3_nodata", "127.0.0.5", "www.nsec3.test.", 16), ("ed25519_a", "127.0.0.5", "www.nsec3.test.", 1),
    ("nsec3_optout_referral", "127.0.0.5", "www.child.optout.test.", 1), ("tld_ds_nodata", "127.0.0.3", "unsigned.test.", 43),
]


def ask(server, name, qtype):
    q = struct.pack("!HHHHHH", 0x5353, 0, 1, 0, 0, 1) + encode_name(name) + struct.pack("!HH", qtype, 1)
    q += b"\0" + struct.pack("!HHIH", 41, 4096, 0x8000, 0)  # OPT with DO
    with socket.create_connection((server, 53), timeout=5) as c:  # TCP: never truncated
        c.sendall(struct.pack("!H", len(q)) + q)
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
            data += c.recv(65535)
    return data[2:]


def main():
    h = signed.SignedHierarchy()
    h.start()
    try:
        os.makedirs(OUT, exist_ok=True)
        for fname, server, name, qtype in QUESTIONS:
            with open(os.path.join(OUT, fname), "wb") as f:
                f.write(ask(server, name, qtype))
    finally:
        h.stop()
        h.cleanup()


if __name__ == "__main__":
    main()
