#!/usr/bin/env python3
"""A scripted hostile FTP server for test_ftp.py: python3 ftp_hostile.py PORT MODE.

Modes (each for every connection):
  drop      SIZE says 1000000, the data connection sends 100000 bytes and closes, then
            "226 Transfer complete" (a lie) on the control connection
  drop426   as drop, but the control connection says "426 Connection closed; transfer aborted"
  sizelie   SIZE says 10, the data connection sends 5000 bytes, then 226
  junk      the greeting is followed by junk lines that are not FTP replies
  silent    accepts and never says anything
  badpasv   EPSV refused, PASV names another host's address and a port nothing listens on
  pasvmlsd  not hostile: EPSV refused, PASV works (its address is the real one); MLSD lists
            /dir/ with facts (a name with spaces, a size only MLSD tells), LIST gives a
            different listing; /f.txt is "via PASV ok\n"
"""
import socket
import sys
import threading

PORT = int(sys.argv[1])
MODE = sys.argv[2]


def serve(c):
    f = c.makefile("rb")

    def say(line):
        c.sendall(line.encode() + b"\r\n")

    if MODE == "silent":
        try:
            while c.recv(4096):
                pass
        except OSError:
            pass
        return
    say("220 hostile test server")
    if MODE == "junk":
        c.sendall(b"\x00\x01garbage without a code\r\nxyz\r\n999999 nothing\r\n")
    data_srv = None
    while True:
        line = f.readline()
        if not line:
            return
        cmd = line.decode(errors="replace").strip()
        verb = cmd.split(" ")[0].upper()
        if MODE == "junk":
            c.sendall(b"garbage reply\r\n")
            continue
        if verb == "USER":
            say("331 password please")
        elif verb == "PASS":
            say("230 logged in")
        elif verb == "PWD":
            say('257 "/" is the current directory')
        elif verb in ("TYPE", "CWD"):
            say("200 ok")
        elif verb == "MDTM":
            say("213 20260101000000")
        elif verb == "SIZE":
            if MODE == "pasvmlsd":
                say("213 12" if cmd.endswith("f.txt") else "550 not a plain file")
                continue
            say("213 " + ("10" if MODE == "sizelie" else "1000000"))
        elif verb == "EPSV":
            if MODE in ("badpasv", "pasvmlsd"):
                say("500 no EPSV")
                continue
            data_srv = socket.socket()
            data_srv.bind(("127.0.0.1", 0))
            data_srv.listen(1)
            say(f"229 Entering Extended Passive Mode (|||{data_srv.getsockname()[1]}|)")
        elif verb == "PASV" and MODE == "pasvmlsd":
            data_srv = socket.socket()
            data_srv.bind(("127.0.0.1", 0))
            data_srv.listen(1)
            p = data_srv.getsockname()[1]
            say(f"227 Entering Passive Mode (127,0,0,1,{p >> 8},{p & 255})")
        elif verb in ("MLSD", "LIST") and MODE == "pasvmlsd":
            d, _ = data_srv.accept()
            say("150 Here comes the directory listing")
            if verb == "MLSD":
                d.sendall(b"type=cdir;modify=20260101000000; .\r\n"
                          b"type=file;size=123456789;modify=20260102030405;UNIX.mode=0644; only in mlsd.iso\r\n"
                          b"type=dir;modify=20260101000000; subdir\r\n")
            else:
                d.sendall(b"-rw-r--r--    1 0 0 5 Jan 01 00:00 only-in-list.txt\r\n")
            d.close()
            data_srv.close()
            data_srv = None
            say("226 Directory send OK")
        elif verb == "PASV":
            # An address elsewhere: the gateway must not follow it (curl uses the control
            # connection's address), and the port has nothing behind it.
            say("227 Entering Passive Mode (192,0,2,1,0,9)")
        elif verb == "REST":
            say("350 ok")
        elif verb == "RETR":
            if data_srv is None:
                say("425 no data connection")
                continue
            d, _ = data_srv.accept()
            say("150 Opening BINARY mode data connection")
            n = 5000 if MODE == "sizelie" else 100000
            try:
                d.sendall(b"via PASV ok\n" if MODE == "pasvmlsd" else b"x" * n)
            except OSError:
                pass
            d.close()
            data_srv.close()
            data_srv = None
            say("426 Connection closed; transfer aborted" if MODE == "drop426" else "226 Transfer complete")
        elif verb == "QUIT":
            say("221 bye")
            return
        else:
            say("502 not implemented")


def run(c):
    try:
        serve(c)
    except OSError:
        pass  # the gateway hung up: that is its right
    finally:
        c.close()


def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", PORT))
    s.listen(16)
    while True:
        c, _ = s.accept()
        threading.Thread(target=run, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
