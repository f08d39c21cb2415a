"""PyJWT against a tollgate issuing JWT access tokens (API.md §10): PyJWKClient
fetches the live jwks_uri from the RFC 8414 metadata, and a fresh token verifies
with `aud` and `iss` checked; after its `exp` the same token is refused.

    python jwt_check.py BASE_URL      (a server run with --access-token-format jwt
                                        and a short --access-ttl)
Ends with `N passed, M failed`; exits 1 if anything failed."""
import sys
import time

import jwt
import requests

BASE = sys.argv[1].rstrip("/")
TIMEOUT = 10
passed = failed = 0


def check(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print(f"ok   {name}")
    except Exception as e:  # noqa: BLE001 - report and go on
        failed += 1
        print(f"FAIL {name}: {type(e).__name__}: {e}")


def metadata():
    host, _, path = BASE.partition("//")[2].partition("/")
    url = f"http://{host}/.well-known/oauth-authorization-server" + (f"/{path}" if path else "")
    return requests.get(url, timeout=TIMEOUT).json()


META = metadata()
ISSUER = META["issuer"]
JWKS = jwt.PyJWKClient(META["jwks_uri"])
TTL = None


def grant():
    global TTL
    r = requests.post(
        META["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": "view"},
        auth=("demo", "demo-secret"),
        timeout=TIMEOUT,
    )
    r.raise_for_status()
    TTL = r.json()["expires_in"]
    return r.json()["access_token"]


def verify(token):
    key = JWKS.get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key.key,
        algorithms=["ES256"],
        audience=ISSUER,
        issuer=ISSUER,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )


TOKEN = grant()


def fresh_token_verifies():
    header = jwt.get_unverified_header(TOKEN)
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256", header
    claims = verify(TOKEN)
    assert claims["client_id"] == "demo" and claims["sub"] == "demo", claims
    assert claims["scope"] == "view", claims


def wrong_audience_is_refused():
    key = JWKS.get_signing_key_from_jwt(TOKEN)
    try:
        jwt.decode(TOKEN, key.key, algorithms=["ES256"], audience="https://elsewhere", issuer=ISSUER)
    except jwt.InvalidAudienceError:
        return
    raise AssertionError("a token for another audience verified")


def expired_token_is_refused():
    exp = jwt.decode(TOKEN, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, exp - time.time()) + 1.1)
    try:
        verify(TOKEN)
    except jwt.ExpiredSignatureError:
        return
    raise AssertionError("a token past its exp verified")


check("PyJWT + PyJWKClient verify a fresh token (aud, iss, ES256, at+jwt)", fresh_token_verifies)
check("PyJWT refuses the token for another audience", wrong_audience_is_refused)
check("PyJWT refuses the token after its exp", expired_token_is_refused)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
