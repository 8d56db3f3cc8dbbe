"""An OTLP/HTTP sink for benchmarks: answers every export with an empty (valid)
ExportTraceServiceResponse and counts requests and bytes; writes the totals to LOG on
exit. Usage: otlp-sink.py PORT LOG"""
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, log = int(sys.argv[1]), sys.argv[2]
totals = {"requests": 0, "bytes": 0}


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        n = int(self.headers.get("content-length") or 0)
        self.rfile.read(n)
        totals["requests"] += 1
        totals["bytes"] += n
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def stop(*_: object) -> None:
    with open(log, "w") as f:
        f.write(f"{totals['requests']} export requests, {totals['bytes']} bytes\n")
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()
