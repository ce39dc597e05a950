"""Drives Latch's LDAP interface with Python's ldap3, as apps written in
Python do (tests/integration/ldap.rs runs it with the tests/apps venv).

Usage: ldap3_client.py URL DN PASSWORD [--starttls CA_FILE] ACTION [ARG...]
  whoami                      the Who-am-I extended operation (RFC 4532)
  search BASE FILTER ATTR...  a subtree search for ATTRs
  paged BASE FILTER SIZE      pages of SIZE entries (RFC 2696), both with
                              ldap3's paged_search and page by page
  modify DN                   replaces DN's mail
Prints one JSON object: "bind" (the bind's result code) and, when the bind
succeeded, what the action answered.
"""

import argparse
import json
import ssl

from ldap3 import MODIFY_REPLACE, SUBTREE, Connection, Server, Tls

PAGED_RESULTS = "1.2.840.113556.1.4.319"


def connect(args):
    tls = None
    if args.starttls:
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=args.starttls)
    server = Server(args.url, tls=tls, get_info=None)
    conn = Connection(server, user=args.dn, password=args.password, raise_exceptions=False)
    conn.open()
    if args.starttls and not conn.start_tls():
        raise SystemExit(f"StartTLS failed: {conn.result}")
    return conn


def entries(response):
    """The entries of a search response, without referrals."""
    return [
        {"dn": item["dn"], "attributes": {k: v for k, v in item["attributes"].items()}}
        for item in response
        if item["type"] == "searchResEntry"
    ]


def search(conn, args):
    conn.search(args.base, args.filter, SUBTREE, attributes=args.attributes)
    return {"result": conn.result["result"], "entries": entries(conn.response)}


def paged(conn, args):
    helper = conn.extend.standard.paged_search(
        args.base, args.filter, SUBTREE, attributes=["uid"], paged_size=args.size, generator=False
    )
    # Page by page too, so the output shows that the server split the
    # results and handed back a cookie for each next page.
    pages, cookie = [], None
    while True:
        conn.search(args.base, args.filter, SUBTREE, attributes=["1.1"], paged_size=args.size, paged_cookie=cookie)
        pages.append([entry["dn"] for entry in entries(conn.response)])
        cookie = conn.result["controls"][PAGED_RESULTS]["value"]["cookie"]
        if not cookie or len(pages) > 100:
            break
    return {"result": conn.result["result"], "paged_search": [entry["dn"] for entry in entries(helper)], "pages": pages}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("dn")
    parser.add_argument("password")
    parser.add_argument("--starttls", metavar="CA_FILE")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("whoami")
    parser_search = actions.add_parser("search")
    parser_search.add_argument("base")
    parser_search.add_argument("filter")
    parser_search.add_argument("attributes", nargs="*")
    parser_paged = actions.add_parser("paged")
    parser_paged.add_argument("base")
    parser_paged.add_argument("filter")
    parser_paged.add_argument("size", type=int)
    parser_modify = actions.add_parser("modify")
    parser_modify.add_argument("target")
    args = parser.parse_args()

    conn = connect(args)
    out = {"tls": conn.tls_started}
    conn.bind()
    out["bind"] = conn.result["result"]
    if out["bind"] == 0:
        if args.action == "whoami":
            out["whoami"] = conn.extend.standard.who_am_i()
        elif args.action == "search":
            out.update(search(conn, args))
        elif args.action == "paged":
            out.update(paged(conn, args))
        elif args.action == "modify":
            conn.modify(args.target, {"mail": [(MODIFY_REPLACE, ["changed@example.com"])]})
            out["result"] = conn.result["result"]
    conn.unbind()
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
