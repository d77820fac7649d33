#!/usr/bin/env python3
"""Writes the seed corpus of dhcp_packet_fuzz: client messages of every type, relayed ones,
overloaded ones, and the broken shapes the integration test sends."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dhcp_packet_fuzz")


def msg(mtype, mac=b"\x02\0\0\0\0\x01", ciaddr=0, giaddr=0, opts=b"", file_field=b"", sname=b"", cookie=0x63825363):
    fixed = struct.pack("!BBBBIHHIIII16s64s128s", 1, 1, 6, 0, 0x1234, 0, 0x8000, ciaddr, 0, 0, giaddr, mac,
                        sname.ljust(64, b"\0"), file_field.ljust(128, b"\0"))
    head = bytes([53, 1, mtype]) if mtype else b""
    return fixed + struct.pack("!I", cookie) + head + opts + b"\xff"


def ip(a):
    return bytes(int(x) for x in a.split("."))


seeds = {
    "discover": msg(1, opts=bytes([55, 5, 1, 3, 6, 15, 252, 57, 2, 5, 220, 61, 7, 1, 2, 0, 0, 0, 0, 1])),
    "select": msg(3, opts=bytes([50, 4]) + ip("10.0.0.10") + bytes([54, 4]) + ip("10.0.0.1")),
    "reboot": msg(3, opts=bytes([50, 4]) + ip("10.0.0.10")),
    "renew": msg(3, ciaddr=0x0a00000a),
    "release": msg(7, ciaddr=0x0a00000a, opts=bytes([54, 4]) + ip("10.0.0.1")),
    "decline": msg(4, opts=bytes([50, 4]) + ip("10.0.0.10") + bytes([54, 4]) + ip("10.0.0.1")),
    "inform": msg(8, ciaddr=0x0a000063),
    "relayed": msg(1, giaddr=0x0a090001, mac=b"\x02\0\0\0\0\x09"),
    "reserved": msg(1, mac=b"\x02\0\0\0\0\x01" + b"\0" * 10),
    "overload_both": msg(0, opts=bytes([52, 1, 3]), file_field=bytes([53, 1, 1, 255]), sname=bytes([12, 3]) + b"abc\xff"),
    "overload_loop": msg(0, opts=bytes([52, 1, 1]), file_field=bytes([52, 1, 1, 255])),
    "past_end": msg(1)[:-1] + bytes([12, 200, 65]),
    "short": msg(1)[:100],
    "cookie": msg(1, cookie=0x12345678),
    "large": msg(1, opts=bytes([57, 2, 5, 220])).ljust(1400, b"\0"),
    "long_option": msg(1, opts=bytes([12, 255]) + b"a" * 255 + bytes([12, 10]) + b"b" * 10),
}
os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
