#!/usr/bin/env python3
"""Writes the seed corpus for dns_codec_fuzz (hand-made packets, benign and malicious).
Run from this folder: python3 make_dns_seeds.py  (the files are committed; rerun only to change them)."""
import os
import struct

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dns_codec_fuzz")


def name(text):
    b = b""
    for label in text.strip(".").split("."):
        if label:
            b += bytes([len(label)]) + label.encode()
    return b + b"\0"


def hdr(id_, flags, qd, an, ns=0, ar=0):
    return struct.pack("!HHHHHH", id_, flags, qd, an, ns, ar)


def rr(owner, type_, ttl, rdata, cls=1):
    return owner + struct.pack("!HHIH", type_, cls, ttl, len(rdata)) + rdata


OPT = b"\0" + struct.pack("!HHIH", 41, 1232, 0x8000, 0)
q = name("www.example.test") + struct.pack("!HH", 1, 1)
seeds = {
    "query_a": hdr(1, 0x0100, 1, 0) + q,
    "query_edns": hdr(2, 0x0100, 1, 0, 0, 1) + q + OPT,
    "answer_a_aaaa": hdr(3, 0x8180, 1, 2) + q + rr(b"\xc0\x0c", 1, 300, bytes([192, 0, 2, 1]))
    + rr(b"\xc0\x0c", 28, 300, bytes(15) + b"\1"),
    "referral": hdr(4, 0x8000, 1, 0, 2, 2) + q
    + rr(name("test"), 2, 172800, name("ns1.test")) + rr(name("test"), 2, 172800, b"\3ns2\xc0\x1c")
    + rr(name("ns1.test"), 1, 172800, bytes([127, 0, 0, 3])) + rr(name("ns2.test"), 28, 172800, bytes(15) + b"\1"),
    "cname_chain": hdr(5, 0x8580, 1, 2) + q + rr(b"\xc0\x0c", 5, 60, name("alias.other.test"))
    + rr(name("alias.other.test"), 1, 60, bytes([10, 0, 0, 1])),
    "nxdomain_soa": hdr(6, 0x8583, 1, 0, 1) + q
    + rr(name("example.test"), 6, 3, name("ns.example.test") + name("admin.example.test") + struct.pack("!IIIII", 1, 2, 3, 4, 3)),
    "mx_txt_srv_ptr_dname": hdr(7, 0x8400, 0, 5)
    + rr(name("a.test"), 15, 1, b"\0\x0a" + name("mail.a.test"))
    + rr(name("a.test"), 16, 1, b"\5hello\0\5world")
    + rr(name("_s._tcp.a.test"), 33, 1, struct.pack("!HHH", 1, 2, 80) + name("h.a.test"))
    + rr(name("1.0.0.127.in-addr.arpa"), 12, 1, name("a.test"))
    + rr(name("old.test"), 39, 1, name("new.test")),
    "opaque_type": hdr(8, 0x8000, 0, 1) + rr(name("x.test"), 65280, 1, b"\1\2\3\4"),
    # malicious
    "pointer_self_loop": hdr(9, 0, 1, 0) + b"\xc0\x0c\0\1\0\1",
    "pointer_forward": hdr(10, 0, 1, 0) + b"\xc0\x12\0\1\0\1\1a\0",
    "pointer_two_loop": hdr(11, 0x8000, 1, 1) + b"\1a\xc0\x14\0\1\0\1" + b"\1b\xc0\x0c\0\1\0\1\0\0\0\0\0\0",
    "pointer_out_of_range": hdr(12, 0, 1, 0) + b"\xff\xff\0\1\0\1",
    "label_reserved_type": hdr(13, 0, 1, 0) + b"\x41a\0\0\1\0\1",
    "huge_counts": hdr(14, 0, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF),
    "short_header": b"\x00\x01\x02",
    "a_wrong_length": hdr(15, 0x8000, 0, 1) + rr(name("x"), 1, 1, b"\1\2\3\4\5"),
    "ns_overrun": hdr(16, 0x8000, 0, 1) + name("x") + struct.pack("!HHIH", 2, 1, 1, 2) + b"\1a\0",
    "two_opt": hdr(17, 0, 1, 0, 0, 2) + q + OPT + OPT,
    "opt_in_answer": hdr(18, 0, 1, 1) + q + OPT,
    "trailing": hdr(19, 0, 1, 0) + q + b"\xaa\xbb",
    "notimp_opcode": hdr(20, 0x2800, 1, 0) + q,
    "long_chain_name": hdr(21, 0x8000, 1, 3) + b"\x3f" + b"a" * 63 + b"\0\0\1\0\1"
    + b"".join(b"\x3f" + b"a" * 63 + struct.pack("!H", 0xC000 | off) + struct.pack("!HHIH", 1, 1, 1, 4) + b"\1\2\3\4"
               for off in (12, 12 + 69, 12 + 69 + 80)),
}
os.makedirs(out, exist_ok=True)
for k, v in seeds.items():
    with open(os.path.join(out, k), "wb") as f:
        f.write(v)
print(f"wrote {len(seeds)} seeds to {out}")
