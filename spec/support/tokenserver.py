#!/usr/bin/python3
"""A token server for docker-registry's token auth, for the specs: it issues JWTs (RS256)
signed by KEY, with CERT in their x5c header (the registry's rootcertbundle holds CERT).

GET /token?service=&scope=... with Basic auth (or none: anonymous, pull only) and POST /token
(OAuth2 form: grant_type=password with username/password, or grant_type=refresh_token with
refresh_token) as distribution's token spec describes.  Users: "u:p,u2:p2"; user "alice"
may push.  Each request is logged to LOG (JSON: method, grant, user, scopes, refresh) —
never with a password.
usage: tokenserver.py PORT KEY CERT LOG USERS"""
import base64, json, secrets, sys, threading, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

PORT, KEYF, CERTF, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
USERS = dict(u.split(":", 1) for u in sys.argv[5].split(",") if u)
KEY = open(KEYF, "rb").read()
CERT = x509.load_pem_x509_certificate(open(CERTF, "rb").read())
X5C = base64.b64encode(CERT.public_bytes(serialization.Encoding.DER)).decode()
REFRESH = {}
lock = threading.Lock()


def log(d):
    with lock:
        with open(LOG, "a") as f:
            f.write(json.dumps(d) + "\n")


def token_for(user, scopes, service):
    access = []
    for s in scopes:
        parts = s.split(":")
        if len(parts) < 3 or parts[0] != "repository":
            continue
        name, actions = ":".join(parts[1:-1]), parts[-1].split(",")
        allowed = ["pull"] + (["push"] if user == "alice" else [])
        access.append({"type": "repository", "name": name, "actions": [a for a in actions if a in allowed]})
    now = int(time.time())
    claims = {"iss": "ctrlua-token-issuer", "sub": user or "", "aud": service, "exp": now + 300,
              "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8), "access": access}
    return jwt.encode(claims, KEY, algorithm="RS256", headers={"x5c": [X5C]})


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, doc):
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        user = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            name, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            if USERS.get(name) != pw:
                log({"method": "GET", "user": name, "ok": False})
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
            user = name
        scopes = q.get("scope", [])
        log({"method": "GET", "user": user, "scopes": scopes, "ok": True})
        doc = {"token": token_for(user, scopes, q.get("service", [""])[0]), "expires_in": 300,
               "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if user and q.get("offline_token") == ["true"]:
            rt = secrets.token_hex(16)
            REFRESH[rt] = user
            doc["refresh_token"] = rt
        self.reply(200, doc)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        grant = form.get("grant_type", [""])[0]
        scopes = " ".join(form.get("scope", [])).split()
        user = None
        if grant == "password":
            name, pw = form.get("username", [""])[0], form.get("password", [""])[0]
            if USERS.get(name) != pw:
                log({"method": "POST", "grant": grant, "user": name, "ok": False})
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
            user = name
        elif grant == "refresh_token":
            user = REFRESH.get(form.get("refresh_token", [""])[0])
            if not user:
                log({"method": "POST", "grant": grant, "ok": False})
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad refresh token"}]})
        else:
            return self.reply(400, {"error": "unsupported_grant_type"})
        rt = secrets.token_hex(16)
        REFRESH[rt] = user
        log({"method": "POST", "grant": grant, "user": user, "scopes": scopes, "ok": True})
        self.reply(200, {"access_token": token_for(user, scopes, form.get("service", [""])[0]),
                         "expires_in": 300, "refresh_token": rt})


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
