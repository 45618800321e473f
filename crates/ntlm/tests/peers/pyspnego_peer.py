#!/usr/bin/env python3
"""A pyspnego NTLM peer driven over stdin/stdout, for exctl-ntlm's interoperability tests.

Usage: pyspnego_peer.py initiate|accept

Environment:
  PEER_USER, PEER_PASSWORD   initiate: the account ("DOMAIN\\user" or "user")
  PEER_CBT_HEX               optional: application data of the channel bindings, hex
  NTLM_USER_FILE             accept: pyspnego's credential file, lines DOMAIN:USER:PASSWORD

One command per line on stdin, one reply line on stdout; binary values are hex, "-" is empty:
  STEP <token|->             -> TOKEN <token|-> <complete: 0|1>
  WRAP <plaintext>           -> WRAPPED <header> <sealed>      (wrap_winrm, WinRM's framing)
  UNWRAP <header> <sealed>   -> PLAIN <plaintext>              (unwrap_winrm)
  SIGN <data>                -> SIGNATURE <signature>
  VERIFY <data> <signature>  -> VERIFIED
  INFO                       -> INFO <client principal or ->
  QUIT
Any failure replies ERR <exception class>: <message> and the loop goes on.
The first line written is READY <pyspnego version>, or MISSING <reason> if pyspnego cannot
be imported.
"""

import os
import sys


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def unhex(value):
    return b"" if value == "-" else bytes.fromhex(value)


def tohex(value):
    return value.hex() if value else "-"


def main():
    try:
        import spnego
        from spnego.channel_bindings import GssChannelBindings
        from importlib.metadata import version
    except ImportError as error:
        out("MISSING %s" % error)
        return 3

    role = sys.argv[1]
    bindings = None
    if os.environ.get("PEER_CBT_HEX"):
        bindings = GssChannelBindings(application_data=bytes.fromhex(os.environ["PEER_CBT_HEX"]))

    if role == "initiate":
        context = spnego.client(
            os.environ["PEER_USER"],
            os.environ["PEER_PASSWORD"],
            hostname="ex01.exctl.test",
            service="HTTP",
            channel_bindings=bindings,
            protocol="ntlm",
        )
    elif role == "accept":
        context = spnego.server(channel_bindings=bindings, protocol="ntlm")
    else:
        out("ERR usage: initiate|accept")
        return 2

    out("READY %s" % version("pyspnego"))
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        command, args = words[0], words[1:]
        try:
            if command == "QUIT":
                return 0
            elif command == "STEP":
                token = context.step(unhex(args[0]) or None)
                out("TOKEN %s %d" % (tohex(token), 1 if context.complete else 0))
            elif command == "WRAP":
                result = context.wrap_winrm(unhex(args[0]))
                out("WRAPPED %s %s" % (tohex(result.header), tohex(result.data)))
            elif command == "UNWRAP":
                out("PLAIN %s" % tohex(context.unwrap_winrm(unhex(args[0]), unhex(args[1]))))
            elif command == "SIGN":
                out("SIGNATURE %s" % tohex(context.sign(unhex(args[0]))))
            elif command == "VERIFY":
                context.verify(unhex(args[0]), unhex(args[1]))
                out("VERIFIED")
            elif command == "INFO":
                out("INFO %s" % (context.client_principal or "-"))
            else:
                out("ERR unknown command %s" % command)
        except Exception as error:  # report every failure to the test, keep serving
            out("ERR %s: %s" % (type(error).__name__, str(error).replace("\n", " ")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
