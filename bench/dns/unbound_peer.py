"""Unbound as the side-by-side peer of Outpost's DNS server on the fake hierarchy (bench only).
Settings from ../shared/notes/dns-test-hierarchy.md: same fake root, no IPv6, iterator only (or
validating with a given trust anchor), test. not a local zone, loopback name servers allowed."""
import os
import subprocess


def write_conf(workdir, addr, port, hints, threads=1, name="unbound", anchor=None):
    """Writes WORKDIR/NAME.conf for Unbound on ADDR:PORT with THREADS threads; returns its path.
    ANCHOR (a file of DS/DNSKEY records): validating ("validator iterator" with that trust
    anchor), else the iterator alone."""
    conf = os.path.join(workdir, name + ".conf")
    modules = '"iterator"'
    if anchor:
        modules = (f'"validator iterator"\n  trust-anchor-file: "{anchor}"\n  trust-anchor-signaling: no\n'
                   f'  root-key-sentinel: no')
    with open(conf, "w") as f:
        f.write(f"""server:
  interface: {addr}
  port: {port}
  username: ""
  chroot: ""
  directory: "{workdir}"
  pidfile: "{workdir}/{name}.pid"
  use-syslog: no
  logfile: ""
  verbosity: 0
  num-threads: {threads}
  do-ip6: no
  do-not-query-localhost: no
  module-config: {modules}
  root-hints: "{hints}"
  local-zone: "test." nodefault
  access-control: 127.0.0.0/8 allow
  msg-cache-size: 64m
  rrset-cache-size: 128m
  so-reuseport: yes
remote-control:
  control-enable: no
""")
    return conf


def argv(conf):
    """The command line running Unbound in the foreground (a real PID to stop) with CONF."""
    return ["unbound", "-d", "-c", conf]


def start_unbound(workdir, addr, port, hints, threads=1, name="unbound"):
    """Writes WORKDIR/NAME.conf and runs `unbound -d` on ADDR:PORT; returns the Popen (stop it by
    its PID). The caller waits until it answers."""
    return subprocess.Popen(argv(write_conf(workdir, addr, port, hints, threads, name)))
