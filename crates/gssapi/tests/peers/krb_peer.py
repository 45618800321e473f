"""A pyspnego Kerberos peer driven over stdin/stdout, for exctl's interop tests.

Usage: krb_peer.py client|server kerberos|negotiate
Lines in:  step HEX|-   |  wrap HEX  |  unwrap HEADERHEX DATAHEX  |  peer
Lines out: TOKEN HEX|- 0|1  |  WRAP HEADERHEX DATAHEX  |  PLAIN HEX  |  PEER NAME  |  ERROR text
The realm comes from KRB5_CONFIG, the client's ticket from KRB5CCNAME, the server's
keys from KRB5_KTNAME; the service is HTTP/localhost.
"""
import sys

try:
    import spnego
    import gssapi  # noqa: F401  (pyspnego's Kerberos needs it)
except Exception as e:  # pragma: no cover
    print("MISSING", e, flush=True)
    sys.exit(0)

role, protocol = sys.argv[1], sys.argv[2]
if role == "client":
    ctx = spnego.client(hostname="localhost", service="HTTP", protocol=protocol)
else:
    ctx = spnego.server(hostname="localhost", service="HTTP", protocol=protocol)
print("READY", role, protocol, flush=True)


def h(b):
    return b.hex() if b else "-"


def unh(s):
    return b"" if s == "-" else bytes.fromhex(s)


for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    try:
        if words[0] == "step":
            out = ctx.step(unh(words[1]) or None)
            print("TOKEN", h(out), "1" if ctx.complete else "0", flush=True)
        elif words[0] == "wrap":
            r = ctx.wrap_winrm(unh(words[1]))
            print("WRAP", h(r.header), h(r.data), flush=True)
        elif words[0] == "unwrap":
            print("PLAIN", h(ctx.unwrap_winrm(unh(words[1]), unh(words[2]))), flush=True)
        elif words[0] == "peer":
            print("PEER", ctx.client_principal, flush=True)
        else:
            print("ERROR unknown command", words[0], flush=True)
    except Exception as e:
        print("ERROR", type(e).__name__, str(e).replace("\n", " "), flush=True)
