#!/usr/bin/env python3
"""server.py: a local HTTP server for metatags' fetch test: serves a directory, delays, stalls, and counts concurrency.

    server.py DIRECTORY PORT_FILE [ADDRESS [DELAY_FILE]]

Writes the port it listens on (on ADDRESS, default 127.0.0.1; chosen by the
kernel) to PORT_FILE.
  /delay/NAME   waits 1 s, then serves NAME; the most requests in flight
                at once are counted
  /slow/NAME    waits as many seconds as DELAY_FILE says at the time (none
                when it is missing or empty), then serves NAME: a test
                slows pages down and speeds them up while a job reads them
  /stall/NAME   never answers (for timeouts)
  /stats        the most /delay/ requests that were in flight at once
  /gzip-bomb/N  260 kB, Content-Encoding: gzip, that inflate to 256 MiB of
                zeros (N is anything: many URLs, one body, made once)
"""
import functools
import os
import http.server
import sys
import threading
import time
import zlib

lock = threading.Lock()
bomb_lock = threading.Lock()
bomb = None


def gzip_bomb():
    global bomb
    with bomb_lock:
        if bomb is None:
            compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip format
            zeros = bytes(1 << 20)
            bomb = b"".join(compressor.compress(zeros) for _ in range(256)) + compressor.flush()
        return bomb
in_flight = 0
most_in_flight = 0


delay_file = None


def current_delay():
    try:
        with open(delay_file) as f:
            return float(f.read().strip() or 0)
    except (OSError, TypeError, ValueError):
        return 0.0


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        global in_flight, most_in_flight
        if self.path == "/stats":
            body = str(most_in_flight).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path.startswith("/gzip-bomb/"):
            body = gzip_bomb()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path.startswith("/stall/"):
            time.sleep(60)
            return
        if self.path.startswith("/slow/"):
            time.sleep(current_delay())
            self.path = self.path[len("/slow"):]
        if self.path.startswith("/delay/"):
            with lock:
                in_flight += 1
                most_in_flight = max(most_in_flight, in_flight)
            time.sleep(1.0)
            with lock:
                in_flight -= 1
            self.path = self.path[len("/delay"):]
        super().do_GET()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # Many ranks' transfers at once: the default backlog of 5 drops their
    # connections, and a dropped SYN waits a second or more to be sent again.
    request_queue_size = 256

    def handle_error(self, request, client_address):
        pass  # clients that time out and hang up are part of the test


def main():
    global delay_file
    directory, port_file = sys.argv[1], sys.argv[2]
    address = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
    delay_file = sys.argv[4] if len(sys.argv) > 4 else None
    server = Server((address, 0), functools.partial(Handler, directory=directory))
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
