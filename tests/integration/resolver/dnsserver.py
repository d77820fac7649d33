"""Helpers for the resolver integration tests: Outpost's DNS server (the dns_server driver) on a
generated config, and dig with its output taken apart."""
import os
import socket
import struct
import subprocess

from dnsfixture import encode_name


def dig(server, *args, port=53):
    p = subprocess.run(["dig", "@" + server, "-p", str(port), "+time=4", "+tries=1"] + list(args),
                       capture_output=True, text=True, timeout=30)
    return p.stdout


def status(out):
    for line in out.splitlines():
        if "status:" in line:
            return line.split("status: ")[1].split(",")[0]
    return None


def flags(out):
    for line in out.splitlines():
        if line.startswith(";; flags:"):
            return set(line.split(";")[2].split(":")[1].split())
    return set()


def answers(out):
    """Record lines of every section, split into fields."""
    return [l.split() for l in out.splitlines() if l and not l.startswith(";")]


def section(out, name):
    """Record lines of one section (ANSWER, AUTHORITY, ADDITIONAL), split into fields."""
    rows, inside = [], False
    for line in out.splitlines():
        if line.startswith(";; %s SECTION:" % name):
            inside = True
        elif inside and (not line or line.startswith(";")):
            break
        elif inside:
            rows.append(line.split())
    return rows


def rcode_of(server, name, qtype, tcp=False):
    """Sends one RD=1 question of numeric type QTYPE (no EDNS) and returns the reply's RCODE."""
    query = struct.pack("!HHHHHH", 0x3131, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", qtype, 1)
    if tcp:
        with socket.create_connection((server, 53), timeout=5) as c:
            c.sendall(struct.pack("!H", len(query)) + query)
            data = b""
            while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
                more = c.recv(65535)
                if not more:
                    raise AssertionError("connection closed before the reply")
                data += more
            reply = data[2:]
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(query, (server, 53))
            reply = s.recvfrom(65535)[0]
    assert reply[:2] == query[:2], "reply to another query"
    return reply[3] & 0x0F


class DnsServer:
    """The dns_server driver with one worker listening on LISTEN:53, recursion for 127.0.0.0/8,
    starting from HINTS (a hints file); stop() checks that it exits cleanly."""

    def __init__(self, driver, workdir, name, hints, listen="127.0.0.1", extra=""):
        self.listen = listen
        conf = os.path.join(workdir, name + ".toml")
        with open(conf, "w") as f:
            f.write(f"""
[server]
workers = 1
[log]
level = "warn"
[dns]
listen = ["{listen}:53"]
hints = "{hints}"
allow_recursion = ["127.0.0.0/8"]
{extra}
""")
        self.proc = subprocess.Popen([driver, conf], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.proc.kill()
            raise RuntimeError("dns_server did not start: " + line)

    def dig(self, *args):
        return dig(self.listen, *args)

    def stop(self):
        self.proc.terminate()
        code = self.proc.wait(timeout=10)
        self.proc.stdout.close()
        if code != 0:
            raise AssertionError("dns_server exited with %s (a crash or a sanitizer report)" % code)
