#!/usr/bin/env python3
"""Outpost's DHCP server ([dhcp]) against real clients in a second network namespace joined
to the test's by a veth pair (vs0 10.50.0.1/24 on Outpost's side, veth1 on the client's):
busybox udhcpc (lease with mask, router, DNS, domain, lease time and the WPAD URL; renew
on SIGUSR1; release on SIGUSR2; a reservation by client identifier) and ISC dhclient (lease,
INIT-REBOOT after a restart of Outpost, release); the WPAD URL handed out is fetched by the
client from [pac]. A scripted relay in Python (giaddr
10.60.0.1 and 10.70.0.1 on the client side, answered on port 67, pool chosen by giaddr):
DISCOVER/OFFER/REQUEST/ACK, INFORM, DECLINE, a NAK for a foreign address, a reservation by
hardware address, a 1400-byte request and one whose options are in the overloaded file
field, pool exhaustion (no offer) and the address coming back by release and by expiry.
Restart: leases are in the lease file and the same client gets the same address. Hostile
datagrams (short, bad cookie, option running past the end, an overload loop, a double
overload) get a log line each, are counted in /metrics, and the server keeps serving."""
import ctypes
import os
import random
import re
import signal
import socket
import struct
import subprocess
import textwrap
import time

import harness as h

ADMIN_PORT = 9145
SERVER = "10.50.0.1"
RELAY = "10.60.0.1"      # giaddr of the relayed pool
SMALL = "10.70.0.1"      # giaddr of the two-address pool (exhaustion)
WPAD = f"http://{SERVER}:3128/wpad.dat"
CLIENT_ID = "01:02:00:00:00:c1:01"   # udhcpc's reservation (option 61)
RESERVED_BY_ID = "10.50.0.60"
RESERVED_MAC = "02:00:00:00:00:aa"   # the relay's reservation by hardware address
RESERVED_BY_MAC = "10.60.0.50"
CLONE_NEWNET = 0x40000000

libc = ctypes.CDLL(None, use_errno=True)


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


# DHCP messages, written by hand (the scripted peers).
def ip2b(a):
    return socket.inet_aton(a)


def b2ip(b):
    return socket.inet_ntoa(b)


def message(mtype, mac, xid, giaddr="0.0.0.0", ciaddr="0.0.0.0", options=(), flags=0, hops=0,
            file_field=b"", cookie=0x63825363, pad_to=0):
    fixed = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, hops, xid, 0, flags, ip2b(ciaddr), ip2b("0.0.0.0"),
                        ip2b("0.0.0.0"), ip2b(giaddr), bytes.fromhex(mac.replace(":", "")), b"",
                        file_field.ljust(128, b"\0"))
    opts = bytes([53, 1, mtype]) if mtype else b""
    for code, value in options:
        opts += bytes([code, len(value)]) + value
    data = fixed + struct.pack("!I", cookie) + opts + b"\xff"
    return data.ljust(pad_to, b"\0")


def parse(data):
    """(fixed fields, {option: bytes}) of a reply, overload honoured."""
    op, htype, hlen, hops, xid, secs, flags = struct.unpack("!BBBBIHH", data[:12])
    f = {"op": op, "xid": xid, "flags": flags, "ciaddr": b2ip(data[12:16]), "yiaddr": b2ip(data[16:20]),
         "giaddr": b2ip(data[24:28]), "chaddr": data[28:28 + hlen].hex(":")}
    assert struct.unpack("!I", data[236:240])[0] == 0x63825363

    def read(buf, out):
        i = 0
        while i < len(buf):
            c = buf[i]
            if c == 0:
                i += 1
                continue
            if c == 255:
                break
            n = buf[i + 1]
            out[c] = out.get(c, b"") + buf[i + 2:i + 2 + n]
            i += 2 + n
    opts = {}
    read(data[240:], opts)
    if 52 in opts:
        if opts[52][0] & 1:
            read(data[108:236], opts)
        if opts[52][0] & 2:
            read(data[44:108], opts)
    return f, opts


class ClientNs:
    """A process holding the client's network namespace; sockets made inside it."""

    def __init__(self, procs):
        self.proc = procs.start(["unshare", "--net", "sleep", "infinity"])
        mine = os.readlink("/proc/self/ns/net")
        deadline = time.time() + 10
        while os.readlink(f"/proc/{self.proc.pid}/ns/net") == mine:
            if time.time() > deadline:
                raise RuntimeError("client namespace not made")
            time.sleep(0.02)
        self.path = f"/proc/{self.proc.pid}/ns/net"

    def run(self, *args, check=True):
        return sh("nsenter", f"--net={self.path}", *args, check=check)

    def cmd(self, *args):
        return ["nsenter", f"--net={self.path}", *args]

    def udp_socket(self, bind):
        """A UDP socket inside the client namespace (setns for its creation only)."""
        own = os.open("/proc/self/ns/net", os.O_RDONLY)
        ns = os.open(self.path, os.O_RDONLY)
        try:
            if libc.setns(ns, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            s.bind(bind)
        finally:
            libc.setns(own, CLONE_NEWNET)
            os.close(own)
            os.close(ns)
        return s


class Relay:
    """A relay agent's socket (giaddr:67 in the client namespace)."""

    def __init__(self, ns, giaddr):
        self.giaddr = giaddr
        self.sock = ns.udp_socket((giaddr, 67))

    def exchange(self, data, timeout=3.0):
        """Sends to the server; its answer (fixed, options), or None if it stays silent."""
        xid = struct.unpack("!I", data[4:8])[0]
        self.sock.sendto(data, (SERVER, 67))
        self.sock.settimeout(timeout)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                got, addr = self.sock.recvfrom(65536)
            except socket.timeout:
                return None
            f, o = parse(got)
            if f["xid"] == xid:
                assert addr == (SERVER, 67), addr
                return f, o
        return None

    def lease(self, mac, options=()):
        """DISCOVER → OFFER → REQUEST → ACK through the relay; (address, ack options)."""
        xid = random.getrandbits(32)
        offer = self.exchange(message(1, mac, xid, giaddr=self.giaddr, hops=1, options=options))
        if offer is None:
            return None, None
        f, o = offer
        assert o[53] == b"\x02", o
        ack = self.exchange(message(3, mac, xid, giaddr=self.giaddr, hops=1,
                                    options=[(50, ip2b(f["yiaddr"])), (54, ip2b(SERVER)), *options]))
        assert ack is not None and ack[1][53] == b"\x05", ack
        return ack[0]["yiaddr"], ack[1]


class Dhcp(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ns = ClientNs(cls.procs)
        pid = str(cls.ns.proc.pid)
        sh("ip", "link", "add", "vs0", "type", "veth", "peer", "name", "veth1", "netns", pid)
        sh("ip", "addr", "add", f"{SERVER}/24", "dev", "vs0")
        sh("ip", "link", "set", "vs0", "up")
        for net in ("10.60.0.0/24", "10.70.0.0/24"):
            sh("ip", "route", "add", net, "dev", "vs0")
        cls.ns.run("ip", "link", "set", "lo", "up")
        cls.ns.run("ip", "link", "set", "veth1", "up")
        cls.reset_client_addresses()
        cls.leases = os.path.join(cls.tmp, "dhcp.leases")
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config=textwrap.dedent(f"""\
            [proxy]
            listen = ["127.0.0.1:{h.PROXY_PORT}", "{SERVER}:3128"]
            [pac]
            enabled = true
            [admin]
            enabled = true
            listen = ["127.0.0.1:{ADMIN_PORT}"]
            [dhcp]
            enabled = true
            interface = "vs0"
            lease_file = "{cls.leases}"
            lease_time = 600
            domain_name = "lan.test"
            dns_servers = ["{SERVER}"]
            pools = [
              {{ subnet = "10.50.0.0/24", first = "10.50.0.100", last = "10.50.0.119", routers = ["{SERVER}"] }},
              {{ subnet = "10.60.0.0/24", first = "10.60.0.100", last = "10.60.0.119", routers = ["{RELAY}"] }},
              {{ subnet = "10.70.0.0/24", first = "10.70.0.100", last = "10.70.0.101", lease_time = 5 }},
            ]
            reservations = [
              {{ client_id = "{CLIENT_ID}", address = "{RESERVED_BY_ID}" }},
              {{ mac = "{RESERVED_MAC}", address = "{RESERVED_BY_MAC}" }},
            ]
            """), acl=textwrap.dedent("""\
            [acl]
            allow_clients = ["127.0.0.0/8", "10.0.0.0/8"]
            """))
        cls.outpost.start()
        cls.relay = Relay(cls.ns, RELAY)
        cls.small = Relay(cls.ns, SMALL)
        cls.scripts()

    @classmethod
    def reset_client_addresses(cls):
        cls.ns.run("ip", "addr", "flush", "dev", "veth1")
        cls.ns.run("ip", "addr", "add", f"{RELAY}/24", "dev", "veth1")
        cls.ns.run("ip", "addr", "add", f"{SMALL}/24", "dev", "veth1")
        cls.ns.run("ip", "route", "replace", "10.50.0.0/24", "dev", "veth1", "src", RELAY)

    @classmethod
    def scripts(cls):
        cls.udhcpc_log = os.path.join(cls.tmp, "udhcpc.log")
        cls.udhcpc_script = os.path.join(cls.tmp, "udhcpc.sh")
        with open(cls.udhcpc_script, "w") as f:
            f.write(textwrap.dedent(f"""\
                #!/bin/sh
                echo "$1 ip=$ip mask=$mask subnet=$subnet router=$router dns=$dns domain=$domain lease=$lease \
                serverid=$serverid wpad=$wpad" >> {cls.udhcpc_log}
                case "$1" in bound|renew) ip addr replace "$ip/$mask" dev "$interface" ;; esac
                exit 0
                """))
        os.chmod(cls.udhcpc_script, 0o755)
        cls.dhclient_log = os.path.join(cls.tmp, "dhclient.log")
        cls.dhclient_script = os.path.join(cls.tmp, "dhclient.sh")
        with open(cls.dhclient_script, "w") as f:
            f.write(textwrap.dedent(f"""\
                #!/bin/sh
                echo "$reason ip=$new_ip_address mask=$new_subnet_mask router=$new_routers \
                dns=$new_domain_name_servers domain=$new_domain_name lease=$new_dhcp_lease_time \
                serverid=$new_dhcp_server_identifier wpad=$new_wpad" >> {cls.dhclient_log}
                case "$reason" in BOUND|RENEW|REBOOT|REBIND) ip addr replace "$new_ip_address/24" dev "$interface" ;; esac
                exit 0
                """))
        os.chmod(cls.dhclient_script, 0o755)
        cls.dhclient_conf = os.path.join(cls.tmp, "dhclient.conf")
        with open(cls.dhclient_conf, "w") as f:
            # reboot: how long INIT-REBOOT is tried before DISCOVER (10 s by default; a
            # loaded machine's fsync before the ACK can take longer).
            f.write("option wpad code 252 = text;\nreboot 60;\n"
                    "request subnet-mask, routers, domain-name-servers, domain-name, dhcp-lease-time, wpad;\n")
        cls.dhclient_leases = os.path.join(cls.tmp, "dhclient.leases")

    @classmethod
    def tearDownClass(cls):
        cls.relay.sock.close()
        cls.small.sock.close()
        super().tearDownClass()

    def tearDown(self):
        self.reset_client_addresses()

    # --- helpers ---
    def metrics(self):
        return h.scrape_metrics(ADMIN_PORT)

    def log_lines(self, pattern):
        return [l for l in self.outpost.log_text().splitlines() if re.search(pattern, l)]

    def wait_log(self, pattern, count=1, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            lines = self.log_lines(pattern)
            if len(lines) >= count:
                return lines
            time.sleep(0.1)
        self.fail(f"no log line {pattern!r} (x{count}) in:\n{self.outpost.log_text()[-3000:]}")

    def file_lines(self, path, pattern, count=1, timeout=20, proc=None):
        deadline = time.time() + timeout
        lines = []
        while time.time() < deadline:
            try:
                with open(path) as f:
                    lines = [l.strip() for l in f if re.search(pattern, l)]
            except FileNotFoundError:
                lines = []
            if len(lines) >= count:
                return lines
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.1)
        self.fail(f"no {pattern!r} (x{count}) in {path}: {lines}")

    def lease_file_entry(self, address):
        with open(self.leases) as f:
            return [l.split() for l in f if l.startswith(address + " ")]

    def fields(self, line):
        return dict(kv.split("=", 1) for kv in line.split()[1:])

    def udhcpc(self, *extra):
        return self.ns.run("busybox", "udhcpc", "-i", "veth1", "-f", "-q", "-n", "-t", "5", "-T", "1",
                           "-s", self.udhcpc_script, "-O", "wpad", *extra, check=False)

    def start_dhclient(self):
        pidfile = os.path.join(self.tmp, "dhclient.pid")
        return self.procs.start(self.ns.cmd("dhclient", "-d", "-1", "-cf", self.dhclient_conf, "-sf",
                                            self.dhclient_script, "-lf", self.dhclient_leases, "-pf", pidfile,
                                            "veth1"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self, proc):
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)

    # --- udhcpc ---
    def test_udhcpc_lease_renew_release(self):
        open(self.udhcpc_log, "w").close()
        p = self.procs.start(self.ns.cmd("busybox", "udhcpc", "-i", "veth1", "-f", "-t", "5", "-T", "1",
                                         "-s", self.udhcpc_script, "-O", "wpad"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            bound = self.fields(self.file_lines(self.udhcpc_log, r"^bound ", proc=p)[0])
            ip = bound["ip"]
            self.assertTrue(ip.startswith("10.50.0.1"), bound)
            self.assertEqual(bound["mask"], "24")
            self.assertEqual(bound["subnet"], "255.255.255.0")
            self.assertEqual(bound["router"], SERVER)
            self.assertEqual(bound["dns"], SERVER)
            self.assertEqual(bound["domain"], "lan.test")
            self.assertEqual(bound["lease"], "600")
            self.assertEqual(bound["serverid"], SERVER)
            self.assertEqual(bound["wpad"], WPAD)
            # The WPAD URL it got is served (by [pac]) to the client at its new address.
            r = self.ns.run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{content_type}", bound["wpad"])
            self.assertEqual(r.stdout, "200 application/x-ns-proxy-autoconfig", r.stderr)
            entry = self.lease_file_entry(ip)
            self.assertEqual(entry[0][1], "bound", entry)
            # Renew (SIGUSR1): a unicast REQUEST from the bound address, ACKed to it.
            acks = len(self.log_lines(rf"request from .*: ack {re.escape(ip)}$"))
            p.send_signal(signal.SIGUSR1)
            renew = self.fields(self.file_lines(self.udhcpc_log, r"^renew ", proc=p)[0])
            self.assertEqual(renew["ip"], ip)
            self.assertEqual(renew["wpad"], WPAD)
            self.wait_log(rf"request from .*: ack {re.escape(ip)}$", acks + 1)
            # Release (SIGUSR2): the lease is released in the file and the metrics.
            p.send_signal(signal.SIGUSR2)
            self.wait_log(rf"release from .*: released {re.escape(ip)}")
            deadline = time.time() + 10
            while self.lease_file_entry(ip)[0][1] != "released" and time.time() < deadline:
                time.sleep(0.1)
            self.assertEqual(self.lease_file_entry(ip)[0][1], "released")
            m = self.metrics()
            self.assertGreaterEqual(m['outpost_dhcp_received_total{type="release"}'], 1)
            self.assertGreaterEqual(m['outpost_dhcp_sent_total{type="ack"}'], 2)
        finally:
            self.stop(p)
        # Released, the address stays the client's: it gets it again.
        open(self.udhcpc_log, "w").close()
        r = self.udhcpc()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.fields(self.file_lines(self.udhcpc_log, r"^bound ")[0])["ip"], ip)

    def test_udhcpc_reservation_by_client_id(self):
        open(self.udhcpc_log, "w").close()
        r = self.udhcpc("-x", "0x3d:" + CLIENT_ID.replace(":", ""))
        self.assertEqual(r.returncode, 0, r.stderr)
        bound = self.fields(self.file_lines(self.udhcpc_log, r"^bound ")[0])
        self.assertEqual(bound["ip"], RESERVED_BY_ID)
        self.assertEqual(bound["wpad"], WPAD)

    # --- dhclient, and a restart of Outpost ---
    def test_dhclient_lease_restart_release(self):
        open(self.dhclient_log, "w").close()
        p = self.start_dhclient()
        try:
            bound = self.fields(self.file_lines(self.dhclient_log, r"^BOUND ", proc=p)[0])
        finally:
            self.stop(p)
        ip = bound["ip"]
        self.assertTrue(ip.startswith("10.50.0.1"), bound)
        self.assertEqual(bound["mask"], "255.255.255.0")
        self.assertEqual(bound["router"], SERVER)
        self.assertEqual(bound["dns"], SERVER)
        self.assertEqual(bound["domain"], "lan.test")
        self.assertEqual(bound["lease"], "600")
        self.assertEqual(bound["serverid"], SERVER)
        self.assertEqual(bound["wpad"], WPAD)
        # udhcpc (another client: it sends a client identifier) gets another address.
        open(self.udhcpc_log, "w").close()
        self.assertEqual(self.udhcpc().returncode, 0)
        other = self.fields(self.file_lines(self.udhcpc_log, r"^bound ")[0])["ip"]
        self.assertNotEqual(other, ip)

        # Restart: the leases come back from the file.
        serving = len(self.log_lines(r"dhcp: serving on"))
        self.assertEqual(self.outpost.stop(), 0)
        self.outpost.start()
        self.wait_log(r"dhcp: serving on", serving + 1)
        # dhclient's INIT-REBOOT (it has a lease in its file) is ACKed with the same address.
        open(self.dhclient_log, "w").close()
        p = self.start_dhclient()
        try:
            line = self.file_lines(self.dhclient_log, r"^(REBOOT|BOUND) ", proc=p)[0]
        finally:
            self.stop(p)
        self.assertTrue(line.startswith("REBOOT "), line)
        self.assertEqual(self.fields(line)["ip"], ip)
        # udhcpc starts from DISCOVER and is offered its old address again.
        open(self.udhcpc_log, "w").close()
        self.assertEqual(self.udhcpc().returncode, 0)
        self.assertEqual(self.fields(self.file_lines(self.udhcpc_log, r"^bound ")[0])["ip"], other)

        # dhclient -r: a RELEASE, kept in the file.
        self.ns.run("ip", "addr", "replace", f"{ip}/24", "dev", "veth1")
        r = self.ns.run("dhclient", "-r", "-cf", self.dhclient_conf, "-sf", self.dhclient_script, "-lf",
                        self.dhclient_leases, "-pf", os.path.join(self.tmp, "dhclient-r.pid"), "veth1",
                        check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_log(rf"release from .*: released {re.escape(ip)}")

    # --- a relay agent, scripted ---
    def test_relay(self):
        ip, o = self.relay.lease("02:00:00:00:01:01", options=[(55, bytes([1, 3, 6, 15, 252, 51]))])
        self.assertTrue(ip.startswith("10.60.0.1"), ip)
        self.assertEqual(o[1], ip2b("255.255.255.0"))
        self.assertEqual(o[3], ip2b(RELAY))
        self.assertEqual(o[6], ip2b(SERVER))
        self.assertEqual(o[15], b"lan.test")
        self.assertEqual(o[252], WPAD.encode())
        self.assertEqual(o[54], ip2b(SERVER))
        self.assertEqual(struct.unpack("!I", o[51])[0], 600)
        # The parameter request list is honoured: asked for 1 and 3 only, no 6/15/252.
        f, o = self.relay.exchange(message(1, "02:00:00:00:01:02", 7, giaddr=RELAY, hops=1,
                                           options=[(55, bytes([3, 1]))]))
        self.assertEqual(o[53], b"\x02")
        self.assertIn(1, o)
        self.assertIn(3, o)
        self.assertNotIn(6, o)
        self.assertNotIn(252, o)
        # INFORM: options, no address, no lease time.
        f, o = self.relay.exchange(message(8, "02:00:00:00:01:01", 8, giaddr=RELAY, ciaddr=ip))
        self.assertEqual(o[53], b"\x05")
        self.assertEqual(f["yiaddr"], "0.0.0.0")
        self.assertNotIn(51, o)
        self.assertEqual(o[252], WPAD.encode())
        # RENEWING with the wrong address: NAK (broadcast bit set for the relay).
        f, o = self.relay.exchange(message(3, "02:00:00:00:01:01", 9, giaddr=RELAY, ciaddr="10.60.0.118"))
        self.assertEqual(o[53], b"\x06")
        self.assertTrue(f["flags"] & 0x8000)
        # INIT-REBOOT for an address of another network: NAK.
        f, o = self.relay.exchange(message(3, "02:00:00:00:01:01", 10, giaddr=RELAY,
                                           options=[(50, ip2b("192.168.9.9"))]))
        self.assertEqual(o[53], b"\x06")
        # INIT-REBOOT for its own address: ACK.
        f, o = self.relay.exchange(message(3, "02:00:00:00:01:01", 11, giaddr=RELAY, options=[(50, ip2b(ip))]))
        self.assertEqual(o[53], b"\x05")
        self.assertEqual(f["yiaddr"], ip)
        # SELECTING another server: silence, and the offer is withdrawn.
        self.assertIsNone(self.relay.exchange(message(3, "02:00:00:00:01:02", 12, giaddr=RELAY,
                                                      options=[(54, ip2b("10.60.0.9")), (50, ip2b(ip))]),
                                              timeout=1))
        # DECLINE: the address is out of use; the client's next DISCOVER gets another one.
        self.assertIsNone(self.relay.exchange(message(4, "02:00:00:00:01:01", 13, giaddr=RELAY,
                                                      options=[(50, ip2b(ip)), (54, ip2b(SERVER))]), timeout=1))
        self.wait_log(rf"decline from .*: declined {re.escape(ip)}")
        self.assertEqual(self.lease_file_entry(ip)[0][1], "declined")
        again, _ = self.relay.lease("02:00:00:00:01:01")
        self.assertNotEqual(again, ip)
        # A reservation by hardware address, outside the range.
        got, _ = self.relay.lease(RESERVED_MAC)
        self.assertEqual(got, RESERVED_BY_MAC)

    def test_large_and_overloaded_requests(self):
        # A 1400-byte DISCOVER (RFC 2131 allows more than 576) with a big maximum message size.
        f, o = self.relay.exchange(message(1, "02:00:00:00:02:01", 21, giaddr=RELAY, hops=1,
                                           options=[(57, struct.pack("!H", 1500))], pad_to=1400))
        self.assertEqual(o[53], b"\x02")
        # The message type and the request list in the file field (option 52 = 1).
        file_field = bytes([53, 1, 1, 55, 2, 1, 252, 255])
        data = message(0, "02:00:00:00:02:02", 22, giaddr=RELAY, options=[(52, b"\x01")], file_field=file_field)
        f, o = self.relay.exchange(data)
        self.assertEqual(o[53], b"\x02")
        self.assertEqual(o[252], WPAD.encode())

    # --- pool exhaustion, release and expiry ---
    def test_pool_exhaustion(self):
        a, _ = self.small.lease("02:00:00:00:03:01")
        b, _ = self.small.lease("02:00:00:00:03:02")
        self.assertEqual({a, b}, {"10.70.0.100", "10.70.0.101"})
        full = self.metrics()['outpost_dhcp_no_address_total']
        self.assertIsNone(self.small.exchange(message(1, "02:00:00:00:03:03", 31, giaddr=SMALL), timeout=1))
        self.assertEqual(self.metrics()['outpost_dhcp_no_address_total'], full + 1)
        self.wait_log(r"no free address in the pool of 10\.70\.0\.0")
        # A REQUEST for a held address: NAK.
        f, o = self.small.exchange(message(3, "02:00:00:00:03:03", 32, giaddr=SMALL,
                                           options=[(50, ip2b(a)), (54, ip2b(SERVER))]))
        self.assertEqual(o[53], b"\x06")
        # A release frees it for the waiting client.
        self.assertIsNone(self.small.exchange(message(7, "02:00:00:00:03:01", 33, giaddr=SMALL, ciaddr=a,
                                                      options=[(54, ip2b(SERVER))]), timeout=1))
        c, _ = self.small.lease("02:00:00:00:03:03")
        self.assertEqual(c, a)
        # The pool is full again; the 5-second lease of b expires and a fourth client gets b.
        deadline = time.time() + 60
        got = None
        while got is None and time.time() < deadline:
            got, _ = self.small.lease("02:00:00:00:03:04")
            if got is None:
                time.sleep(0.5)
        self.assertIn(got, (b, a))

    # --- hostile datagrams ---
    def test_malformed(self):
        s = self.ns.udp_socket((RELAY, 6767))
        good = message(1, "02:00:00:00:04:01", 41, giaddr=RELAY)
        bad = {
            "short": good[:100],
            "cookie": message(1, "02:00:00:00:04:01", 42, giaddr=RELAY, cookie=0x12345678),
            "past the end": good[:-1] + bytes([12, 200, 65]),
            "loop": message(0, "02:00:00:00:04:01", 43, giaddr=RELAY, options=[(52, b"\x01")],
                            file_field=bytes([52, 1, 1, 255])),
            "twice": message(1, "02:00:00:00:04:01", 44, giaddr=RELAY, options=[(52, b"\x02"), (52, b"\x02")]),
            "hlen": good[:2] + bytes([200]) + good[3:],
        }
        before = self.metrics().get("outpost_dhcp_malformed_total", 0)
        for data in bad.values():
            s.sendto(data, (SERVER, 67))
        reasons = [r"short message \(100 bytes", r"bad magic cookie", r"option 12 of length 200 runs past the end",
                   r"option overload inside the file field", r"option overload given twice",
                   r"hardware address length 200"]
        for r in reasons:
            self.wait_log(r"dhcp: bad message from 10\.60\.0\.1:6767 .*" + r)
        deadline = time.time() + 10
        while self.metrics().get("outpost_dhcp_malformed_total", 0) < before + len(bad) and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.metrics()["outpost_dhcp_malformed_total"], before + len(bad))
        # Still serving.
        ip, _ = self.relay.lease("02:00:00:00:04:02")
        self.assertTrue(ip.startswith("10.60.0.1"))
        self.assertIsNone(self.outpost.proc.poll())
        s.close()


if __name__ == "__main__":
    h.main()
