#!/usr/bin/env python3
"""fake_llm_server.py: plays an LLM endpoint for lmgen's tests.

    python3 test/fake_llm_server.py DATA_DIR LOG_FILE

Listens on 127.0.0.1 on a port the OS picks and prints that port, alone on
a line, on stdout. The URL path picks the scenario and the API shape:

    /<scenario>/v1/messages          Anthropic Messages reply
    /<scenario>/v1/chat/completions  OpenAI chat-completions reply

A request that reaches the server through a proxy carries an absolute URL
("http://host/<scenario>/..."); it is served the same way. Every request is
appended to LOG_FILE as one JSON line: {"path", "headers", "body"}. The
canned reply texts are files in DATA_DIR (test/data/agent/).
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from email.utils import formatdate
from urllib.parse import urlsplit

DATA_DIR = sys.argv[1]
LOG_FILE = sys.argv[2]
LOCK = threading.Lock()
COUNTS = {}

# scenario -> canned reply text file
TEXT = {
    "good": "silu_good.json",
    "fenced": "silu_fenced.txt",
    "prose": "silu_prose.txt",
    "malformed": "silu_malformed.txt",
    "unknown_param": "silu_unknown_param.json",
    "inject": "silu_inject.json",
    "two": "silu_two.txt",
    "negative": "silu_negative.json",
    "new": "toy_mlp.json",
    # lmgen --arch: one template answer (test/data/agent/arch/)
    "arch_good": "arch/good.txt",
    "arch_layer_off": "arch/layer_off.json",
    "arch_inject": "arch/inject.json",
    "arch_malformed": "arch/malformed.txt",
    "arch_wrong_type": "arch/wrong_type.json",
}

# lmgen --arch whose template names a class the database lacks: scenario ->
# (the template answer, the answer for the module request that follows).
# A request is the template's when its prompt asks for the template.
ARCH = {
    "arch_unknown": ("arch/unknown_class.json", "arch/minillama_mlp.json"),
    "arch_unknown_bad": ("arch/unknown_class.json",
                         "arch/minillama_mlp_bad.json"),
}


def text_of(name):
    with open(os.path.join(DATA_DIR, name), encoding="utf-8") as f:
        return f.read()


def reply_body(style, text, stop="end_turn"):
    if style == "openai":
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": "fake",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "length" if stop == "max_tokens" else "stop",
            }],
        }
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": "fake",
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }


def error_body(style, kind, message):
    if style == "openai":
        return {"error": {"message": message, "type": kind, "code": None}}
    return {"type": "error", "error": {"type": kind, "message": message}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, obj=None, raw=None, headers=()):
        data = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace")
        path = self.path
        parts = urlsplit(path).path.strip("/").split("/")
        scenario = parts[0] if parts else ""
        style = "openai" if path.endswith("/chat/completions") else "anthropic"
        with LOCK:
            COUNTS[scenario] = COUNTS.get(scenario, 0) + 1
            count = COUNTS[scenario]
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = body
            with open(LOG_FILE, "a", encoding="utf-8") as log:
                log.write(json.dumps({"path": path,
                                      "headers": dict(self.headers.items()),
                                      "body": parsed}) + "\n")
        key = self.headers.get("x-api-key") or self.headers.get("Authorization", "")

        if scenario in TEXT:
            self.send(200, reply_body(style, text_of(TEXT[scenario])))
        elif scenario in ARCH:
            tmpl, module = ARCH[scenario]
            asks_template = "Write the LM-Predictor architecture template" in body
            self.send(200, reply_body(style, text_of(tmpl if asks_template
                                                     else module)))
        elif scenario == "429_then_ok":
            if count == 1:
                self.send(429, error_body(style, "rate_limit_error", "slow down"),
                          headers=[("Retry-After", "1")])
            else:
                self.send(200, reply_body(style, text_of("silu_good.json")))
        elif scenario == "503_then_ok":
            if count == 1:
                self.send(503, error_body(style, "overloaded_error", "busy"))
            else:
                self.send(200, reply_body(style, text_of("silu_good.json")))
        elif scenario == "500":
            self.send(500, error_body(style, "api_error", "internal failure"))
        elif scenario == "429_date":
            when = formatdate(time.time() + 3, usegmt=True)
            self.send(429, error_body(style, "rate_limit_error", "slow down"),
                      headers=[("Retry-After", when)])
        elif scenario == "retry_after_long":
            self.send(429, error_body(style, "rate_limit_error", "come back tomorrow"),
                      headers=[("Retry-After", "86400")])
        elif scenario == "bad_request":
            self.send(400, error_body(style, "invalid_request_error",
                                      "max_tokens: must be positive"))
        elif scenario == "echo_key":
            self.send(401, error_body(style, "authentication_error",
                                      "invalid x-api-key: " + key))
        elif scenario == "echo_key_ok":
            self.send(200, reply_body(style, "the key was " + key + " and no JSON"))
        elif scenario == "cutoff":
            self.send(200, reply_body(style, '{"full_name": "torch.nn', "max_tokens"))
        elif scenario == "not_json":
            self.send(502, raw=b"<html><body>Bad gateway</body></html>")
        elif scenario == "hang":
            time.sleep(10)
            self.send(200, reply_body(style, text_of("silu_good.json")))
        elif scenario == "oversized":
            pad = "x" * (300 * 1024)
            self.send(200, reply_body(style, pad))
        elif scenario == "oversized_chunked":
            # no Content-Length: the client only learns the size by reading
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                self.wfile.write(b'{"content": [{"type": "text", "text": "')
                for _ in range(300):
                    self.wfile.write(b"y" * 1024)
                self.wfile.write(b'"}]}')
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif scenario == "echo":
            self.send(200, {"echo": body})
        else:
            self.send(404, error_body(style, "not_found_error",
                                      "no scenario " + scenario))


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # a client that gave up (timeout, reply too large) is expected
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def main():
    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
