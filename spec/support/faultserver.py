#!/usr/bin/python3
"""A registry for the specs that serves one OCI image layout and injects the faults that
FAULTS (a JSON file, read at each request) asks for:

  cut_blob: DIGEST        the first GET of that blob sends half its bytes and closes
  bad_blob: DIGEST        that blob's bytes are wrong (same length)
  bad_digest_header: true manifests carry a wrong Docker-Content-Digest
  oversized_manifest: true the manifest is over 4 MiB
  media_type: TYPE        the manifest's Content-Type (and mediaType) is TYPE
  not_found: true         every manifest is 404
  redirect_blobs: URL     blobs answer 307 to URL + the same path
  require_basic: "u:p"    everything needs Basic auth with u:p
  slow_blob: N            blobs go out at about N bytes a second
  flaky_blob: N           the first N GETs of a blob answer 503 (with Retry-After: 0)

Every request is logged to LOG as one JSON line: method, path, headers.
usage: faultserver.py PORT LAYOUT FAULTS LOG"""
import base64, hashlib, json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, LAYOUT, FAULTS, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
lock = threading.Lock()
cut_done = set()
flaky = {"n": 0}


def faults():
    try:
        with open(FAULTS) as f:
            return json.load(f)
    except Exception:
        return {}


def blob(digest):
    p = os.path.join(LAYOUT, "blobs", "sha256", digest.split(":", 1)[1])
    with open(p, "rb") as f:
        return f.read()


def top_manifest():
    with open(os.path.join(LAYOUT, "index.json")) as f:
        idx = json.load(f)
    d = idx["manifests"][0]
    return d["digest"], d.get("mediaType", "application/vnd.oci.image.manifest.v1+json")


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_one(self):
        with lock:
            with open(LOG, "a") as f:
                f.write(json.dumps({"method": self.command, "path": self.path,
                                    "headers": {k.lower(): v for k, v in self.headers.items()}}) + "\n")
        fl = faults()
        rb = fl.get("require_basic")
        if rb:
            want = "Basic " + base64.b64encode(rb.encode()).decode()
            if self.headers.get("Authorization") != want:
                return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                                 {"Www-Authenticate": 'Basic realm="fault"', "Content-Type": "application/json"})
        path = self.path.split("?")[0]
        if path in ("/v2", "/v2/"):
            return self.send(200, b"{}", {"Content-Type": "application/json"})
        if "/manifests/" in path:
            if fl.get("not_found"):
                return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}',
                                 {"Content-Type": "application/json"})
            ref = path.rsplit("/manifests/", 1)[1]
            digest, mt = top_manifest()
            try:
                body = blob(ref if ref.startswith("sha256:") else digest)
            except FileNotFoundError:
                return self.send(404, b"{}")
            if fl.get("oversized_manifest"):
                doc = json.loads(body)
                doc.setdefault("annotations", {})["padding"] = "x" * (5 * 1024 * 1024)
                body = json.dumps(doc).encode()
            if fl.get("media_type"):
                mt = fl["media_type"]
                doc = json.loads(body)
                doc["mediaType"] = mt
                body = json.dumps(doc).encode()
            dcd = "sha256:" + hashlib.sha256(body).hexdigest()
            if fl.get("bad_digest_header"):
                dcd = "sha256:" + "0" * 64
            return self.send(200, body, {"Content-Type": mt, "Docker-Content-Digest": dcd})
        if "/blobs/" in path:
            digest = path.rsplit("/blobs/", 1)[1]
            if fl.get("flaky_blob") and self.command == "GET" and flaky["n"] < int(fl["flaky_blob"]):
                flaky["n"] += 1
                return self.send(503, b"busy", {"Retry-After": "0"})
            if fl.get("redirect_blobs"):
                return self.send(307, b"", {"Location": fl["redirect_blobs"] + self.path})
            try:
                data = blob(digest)
            except (FileNotFoundError, IndexError):
                return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}',
                                 {"Content-Type": "application/json"})
            if fl.get("bad_blob") == digest:
                data = bytes([data[0] ^ 0xff]) + data[1:]
            start = 0
            rng = self.headers.get("Range")
            code, hdrs = 200, {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest}
            if rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
                code = 206
                hdrs["Content-Range"] = "bytes %d-%d/%d" % (start, len(data) - 1, len(data))
            body = data[start:]
            if self.command == "HEAD":
                return self.send(code, b"", hdrs)
            self.send_response(code)
            for k, v in hdrs.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if fl.get("cut_blob") == digest and digest not in cut_done:
                cut_done.add(digest)
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            slow = fl.get("slow_blob")
            if slow:
                step = max(1, int(slow) // 20)
                for i in range(0, len(body), step):
                    self.wfile.write(body[i:i + step])
                    self.wfile.flush()
                    time.sleep(0.05)
                return
            self.wfile.write(body)
            return
        self.send(404, b"{}")

    do_GET = handle_one
    do_HEAD = handle_one


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
