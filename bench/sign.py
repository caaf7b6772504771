#!/usr/bin/env python3
"""Precomputes signed getProfile requests for the signed scenario (wrk's LuaJIT has no HMAC).

X-Signature = base64(HMAC-SHA512(secret, "POST\\n" + hex(sha512(body)) + "\\n" + content-type
+ "\\n" + date + "\\n" + uri)). Every request carries the same Date (now): run.sh calls this right
before the scenario, so warm-up plus measurement must fit in COFFER_SIGNATURE_SKEW_SECONDS
(default 300 s; run.sh checks). Output: one line per request, body TAB date TAB signature.
"""

import argparse
import base64
import hashlib
import hmac
import random
from email.utils import formatdate


def sign(secret: str, method: str, body: bytes, content_type: str, date: str, uri: str) -> str:
    message = "\n".join([method, hashlib.sha512(body).hexdigest(), content_type, date, uri])
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha512).digest()
    return base64.b64encode(digest).decode()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--profiles", type=int, required=True)
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--secret", default="demo-signed-secret")
    ap.add_argument("--uri", default="/api/v3/customerProfiles/demo-shop-signed/getProfile")
    a = ap.parse_args()
    date = formatdate(usegmt=True)  # IMF-fixdate, e.g. "Sat, 21 Nov 2026 07:38:04 GMT"
    with open(a.out, "w") as f:
        for _ in range(a.count):
            body = '{"customerIdentification":"bench-%d"}' % random.randrange(a.profiles)
            sig = sign(a.secret, "POST", body.encode(), "application/json", date, a.uri)
            f.write(f"{body}\t{date}\t{sig}\n")


if __name__ == "__main__":
    main()
