#!/usr/bin/env python3
"""Seeds for snmp_ber_fuzz (SNMPv2c requests as net-snmp's tools send them, and broken ones)
and agentx_fuzz (AgentX PDUs a master sends: Get, GetNext, GetBulk in both byte orders,
Response, Close). Run from this directory; writes snmp_ber_fuzz/ and agentx_fuzz/."""
import os
import struct


def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(b)]) + b + content


def ber_int(v):
    return tlv(0x02, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True))


def ber_oid(text):
    arcs = [int(a) for a in text.strip(".").split(".")]
    out = bytearray([arcs[0] * 40 + arcs[1]])
    for a in arcs[2:]:
        chunk = [a & 0x7F]
        a >>= 7
        while a:
            chunk.append(0x80 | (a & 0x7F))
            a >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, bytes(out))


def msg(pdu, oids, rid=1, a=0, b=0, version=1, community=b"public", value=b"\x05\x00"):
    vbs = b"".join(tlv(0x30, ber_oid(o) + value) for o in oids)
    return tlv(0x30, ber_int(version) + tlv(0x04, community) + tlv(pdu, ber_int(rid) + ber_int(a) + ber_int(b) + tlv(0x30, vbs)))


SQ = "1.3.6.1.4.1.3495.1"
snmp = {
    "get": msg(0xA0, [SQ + ".1.3.0", SQ + ".3.2.1.1.0"]),
    "getnext": msg(0xA1, ["1.3.6.1.4.1.3495"]),
    "getbulk": msg(0xA5, [SQ + ".1.3.0", SQ + ".3"], a=1, b=10),
    "getbulk_huge": msg(0xA5, ["1.3"], a=0, b=2147483647),
    "set": msg(0xA3, [SQ + ".2.6.0"], value=tlv(0x04, b"x")),
    "v1": msg(0xA0, [SQ + ".1.3.0"], version=0),
    "values": msg(0xA2, [SQ + ".1.1.0"] * 1, value=tlv(0x41, b"\x00\xff\xff\xff\xff")) ,
    "counter64": msg(0xA2, [SQ + ".1.1.0"], value=tlv(0x46, b"\x00" + b"\xff" * 8)),
    "truncated": msg(0xA0, [SQ + ".1.3.0"])[:-3],
    "huge_length": b"\x30\x84\x7f\xff\xff\xff\x02\x01\x01",
}
os.makedirs("snmp_ber_fuzz", exist_ok=True)
for name, data in snmp.items():
    with open(os.path.join("snmp_ber_fuzz", name), "wb") as f:
        f.write(data)


def ax_oid(arcs, include=0, big=True):
    arcs = [int(a) for a in arcs.split(".")] if arcs else []
    prefix = 0
    if len(arcs) >= 5 and arcs[:4] == [1, 3, 6, 1] and 0 < arcs[4] < 256:
        prefix, arcs = arcs[4], arcs[5:]
    fmt = ">" if big else "<"
    return bytes([len(arcs), prefix, include, 0]) + b"".join(struct.pack(fmt + "I", a) for a in arcs)


def ax_pdu(t, payload, big=True, flags=0, session=7, tid=8, pid=9):
    fmt = ">" if big else "<"
    return bytes([1, t, flags | (0x10 if big else 0), 0]) + struct.pack(fmt + "IIII", session, tid, pid, len(payload)) + payload


agentx = {
    "get": ax_pdu(5, ax_oid(SQ + ".1.3.0") + ax_oid("")),
    "getnext_le": ax_pdu(6, ax_oid(SQ, 1, False) + ax_oid("1.3.6.1.4.1.3496", 0, False), big=False),
    "getbulk": ax_pdu(7, struct.pack(">HH", 1, 20) + ax_oid(SQ + ".1.3.0") + ax_oid("") + ax_oid(SQ) + ax_oid("")),
    "context": ax_pdu(5, struct.pack(">I", 3) + b"abc\0" + ax_oid(SQ + ".1.3.0") + ax_oid(""), flags=0x08),
    "response": ax_pdu(18, struct.pack(">IHH", 0, 0, 0)),
    "close": ax_pdu(2, b"\x01\0\0\0"),
}
os.makedirs("agentx_fuzz", exist_ok=True)
for name, data in agentx.items():
    with open(os.path.join("agentx_fuzz", name), "wb") as f:
        f.write(data)
