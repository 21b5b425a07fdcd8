#!/usr/bin/env python3
"""ref_sign.py - an independent re-derivation (hashlib/hmac only, written from the SigV4 docs)
of the expected values embedded in tests/unit/test_sigv4.c and tests/unit/test_msk_iam.c.
Nothing in kbridge imports it; run it to regenerate or audit the constants:

    python3 tests/integration/iam/ref_sign.py
"""
import base64
import hashlib
import hmac
import json
from urllib.parse import quote

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
AMZ_DATE = "20150830T123600Z"  # time_t 1440938160
DATE = AMZ_DATE[:8]
EMPTY = hashlib.sha256(b"").hexdigest()


def enc(s):
    return quote(s, safe="-_.~")


def signing_key(secret, date, region, service):
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def presign(akid, secret, token, region, service, host, query, expires=900):
    """Query pre-signature of GET / with signed header host; returns (params, signature)."""
    scope = f"{DATE}/{region}/{service}/aws4_request"
    params = dict(query)
    params.update({
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{akid}/{scope}",
        "X-Amz-Date": AMZ_DATE,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": "host",
    })
    if token:
        params["X-Amz-Security-Token"] = token
    # Sorted by encoded name, then encoded value.
    pairs = sorted((enc(k), enc(v)) for k, v in params.items())
    cq = "&".join(f"{k}={v}" for k, v in pairs)
    creq = "\n".join(["GET", "/", cq, f"host:{host}", "", "host", EMPTY])
    sts = "\n".join(["AWS4-HMAC-SHA256", AMZ_DATE, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    sig = hmac.new(signing_key(secret, DATE, region, service), sts.encode(),
                   hashlib.sha256).hexdigest()
    return params, cq, sig


def sign_headers(akid, secret, token, region, service, method, host, headers, body):
    """Header signature (Authorization) with x-amz-date and x-amz-security-token signed."""
    scope = f"{DATE}/{region}/{service}/aws4_request"
    h = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
    h["host"] = host
    h["x-amz-date"] = AMZ_DATE
    if token:
        h["x-amz-security-token"] = token
    names = sorted(h)
    creq = "\n".join([method, "/", ""] + [f"{n}:{h[n]}" for n in names] +
                      ["", ";".join(names), hashlib.sha256(body.encode()).hexdigest()])
    sts = "\n".join(["AWS4-HMAC-SHA256", AMZ_DATE, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    sig = hmac.new(signing_key(secret, DATE, region, service), sts.encode(),
                   hashlib.sha256).hexdigest()
    return (f"AWS4-HMAC-SHA256 Credential={akid}/{scope}, SignedHeaders={';'.join(names)}, "
            f"Signature={sig}")


def msk_iam_payload(akid, secret, token, host, region, user_agent):
    params, _, sig = presign(akid, secret, token, region, "kafka-cluster", host,
                             {"Action": "kafka-cluster:Connect"})
    doc = {k.lower(): v for k, v in params.items()}
    doc["x-amz-signature"] = sig
    doc["version"] = "2020_10_22"
    doc["host"] = host
    doc["user-agent"] = user_agent
    # franz-go's byte order: Go's json.Marshal of a map sorts the keys; no spaces.
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def msk_oauth_token(akid, secret, token, region, user_agent):
    host = f"kafka.{region}.amazonaws.com"
    _, cq, sig = presign(akid, secret, token, region, "kafka-cluster", host,
                         {"Action": "kafka-cluster:Connect"})
    url = f"https://{host}/?{cq}&X-Amz-Signature={sig}&User-Agent={enc(user_agent)}"
    return url, base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


if __name__ == "__main__":
    _, _, sig = presign("ASIAEXAMPLE", SECRET, "tok+en/==", "us-east-1", "kafka-cluster",
                        "b-1.example.kafka.us-east-1.amazonaws.com",
                        {"Action": "kafka-cluster:Connect"})
    print("test_sigv4 SESSION_TOKEN_SIGNATURE", sig)
    print("test_sigv4 STS GetCallerIdentity Authorization:")
    print(sign_headers("ASIAEXAMPLE", SECRET, "session", "us-east-1", "sts", "POST",
                       "sts.us-east-1.amazonaws.com",
                       {"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
                       "Action=GetCallerIdentity&Version=2011-06-15"))
    host = "b-1.mycluster.abc123.c2.kafka.eu-west-1.amazonaws.com"
    print("test_msk_iam payload (long-term):")
    print(msk_iam_payload("AKIDEXAMPLE", SECRET, None, host, "eu-west-1", "kbridge/test"))
    print("test_msk_iam payload (session token):")
    print(msk_iam_payload("ASIAEXAMPLE", SECRET, "FwoGZXIvYXdzE+/token==", host, "eu-west-1",
                          "kbridge/test"))
    url, tok = msk_oauth_token("ASIAEXAMPLE", SECRET, "FwoGZXIvYXdzE+/token==", "eu-west-1",
                               "kbridge/test")
    print("test_msk_iam oauth url:", url)
    print("test_msk_iam oauth token:", tok)
