"""A real OpenLDAP slapd for tests: its own slapd.conf, MDB database and TLS certificate under
a temp dir, listening on ldap:// (StartTLS offered) and ldaps:// ports of its own, run in the
foreground (-d 0) so the test owns the process and stops it by PID.

The directory (dc=example,dc=test):
  ou=people: alice, bob, carol (inetOrgPerson + posixAccount, uid and userPassword), and
    locked (a right password, but the ppolicy overlay's pwdAccountLockedTime 000001010000Z:
    locked for good, its binds refused with invalidCredentials)
  ou=groups: staff (groupOfNames: alice, bob), guests (posixGroup: memberUid carol)
  cn=service: the service account for search-then-bind (may read people and groups)
Passwords are in PEOPLE / SERVICE_PASSWORD. Anonymous clients may only bind.
"""
import os
import shutil
import signal
import subprocess
import time

import harness as h

SUFFIX = "dc=example,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret-77"
SERVICE_DN = f"cn=service,{SUFFIX}"
SERVICE_PASSWORD = "svc-Pass-42"
PEOPLE = {"alice": "alice-in-ldap", "bob": "b0b-ldap pass", "carol": "carol:ldap", "locked": "locked-but-right"}
SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
MODULES = "/usr/lib/ldap"


def _ldif():
    out = [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Outpost test\n",
           f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n",
           f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n",
           f"dn: ou=policies,{SUFFIX}\nobjectClass: organizationalUnit\nou: policies\n",
           f"dn: cn=default,ou=policies,{SUFFIX}\nobjectClass: device\nobjectClass: pwdPolicy\ncn: default\n"
           "pwdAttribute: userPassword\npwdLockout: TRUE\npwdMaxFailure: 0\n",
           f"dn: {SERVICE_DN}\nobjectClass: simpleSecurityObject\nobjectClass: organizationalRole\ncn: service\n"
           f"userPassword: {SERVICE_PASSWORD}\n"]
    for uid_number, (user, password) in enumerate(PEOPLE.items(), start=1000):
        entry = (f"dn: uid={user},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n"
                 f"uid: {user}\ncn: {user}\nsn: {user}\nuidNumber: {uid_number}\ngidNumber: {uid_number}\n"
                 f"homeDirectory: /home/{user}\nuserPassword: {password}\n")
        if user == "locked":
            entry += "pwdAccountLockedTime: 000001010000Z\n"
        out.append(entry)
    out.append(f"dn: cn=staff,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: staff\n"
               f"member: uid=alice,ou=people,{SUFFIX}\nmember: uid=bob,ou=people,{SUFFIX}\n")
    out.append(f"dn: cn=guests,ou=groups,{SUFFIX}\nobjectClass: posixGroup\ncn: guests\ngidNumber: 2000\n"
               "memberUid: carol\n")
    return "\n".join(out)


class Slapd:
    """slapd on 127.0.0.1:port (ldap://, StartTLS) and 127.0.0.1:tls_port (ldaps://), with
    certs/cert.pem signed by the test CA (ca_file) unless `cert` names another pair."""

    def __init__(self, procs, workdir, port=3389, tls_port=3636, certs=None, cert="good"):
        self.procs, self.port, self.tls_port = procs, port, tls_port
        self.dir = os.path.join(workdir, "slapd")
        os.makedirs(os.path.join(self.dir, "db"), exist_ok=True)
        self.certs = certs
        self.ca_file = os.path.join(certs, "ca.pem")
        self.conf = os.path.join(self.dir, "slapd.conf")
        self.log = os.path.join(self.dir, "slapd.log")
        with open(self.conf, "w") as f:
            f.write(
                "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n"
                "include /etc/ldap/schema/nis.schema\ninclude /etc/ldap/schema/inetorgperson.schema\n"
                f"modulepath {MODULES}\nmoduleload back_mdb\nmoduleload ppolicy\n"
                f"pidfile {self.dir}/slapd.pid\nargsfile {self.dir}/slapd.args\n"
                f"TLSCACertificateFile {certs}/ca.pem\nTLSCertificateFile {certs}/{cert}.pem\n"
                f"TLSCertificateKeyFile {certs}/{cert}.key\n"
                f"database mdb\nmaxsize 16777216\nsuffix \"{SUFFIX}\"\nrootdn \"{ROOT_DN}\"\n"
                f"rootpw {ROOT_PASSWORD}\ndirectory {self.dir}/db\n"
                f"overlay ppolicy\nppolicy_default \"cn=default,ou=policies,{SUFFIX}\"\nppolicy_use_lockout\n"
                "access to attrs=userPassword by anonymous auth by self auth by * none\n"
                f"access to * by dn.exact=\"{SERVICE_DN}\" read by users read by * none\n")
        ldif = os.path.join(self.dir, "data.ldif")
        with open(ldif, "w") as f:
            f.write(_ldif())
        r = subprocess.run([SLAPD, "-T", "add", "-f", self.conf, "-l", ldif], capture_output=True)
        if r.returncode != 0:
            raise RuntimeError("slapadd: " + r.stderr.decode(errors="replace"))
        self.proc = None

    def start(self):
        urls = f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.tls_port}/"
        self.logf = open(self.log, "ab")
        self.proc = self.procs.start([SLAPD, "-d", "0", "-f", self.conf, "-h", urls], stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        h.wait_port(self.port, proc=self.proc)
        h.wait_port(self.tls_port, proc=self.proc)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None
        if getattr(self, "logf", None):
            self.logf.close()
            self.logf = None

    def pause(self):
        """SIGSTOP: the kernel still accepts connections on its sockets, nobody answers."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def whoami(self, dn, password, url=None):
        """ldapwhoami's exit code and output for a simple bind (the directory's own view)."""
        env = dict(os.environ, LDAPTLS_CACERT=self.ca_file)
        r = subprocess.run(["ldapwhoami", "-x", "-H", url or f"ldap://127.0.0.1:{self.port}", "-D", dn, "-w", password],
                           capture_output=True, env=env, timeout=20)
        return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def wait_until(cond, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()
