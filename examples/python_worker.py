#!/usr/bin/env python3
"""A Pando worker in Python: standard library only, TCP transport.

Written from docs/PROTOCOL.md alone, as a third-party implementer would.
It joins a master started with `pando --tcp` (or a `DistributedMap` served
over `transport::tcp`) whose values and results are byte strings, as the
`pando` command's are, and applies a Python expression to each value.

    python3 python_worker.py 'tcp://HOST:PORT?token=TOKEN' 'int(x)**2'

In EXPRESSION, `x` is the input line (a str, decoded as UTF-8); the result
is `str()` of the expression's value. An exception fails the value (the
master retries it). The modules `math` and `time` are available.
"""

import argparse
import math
import queue
import socket
import struct
import sys
import threading
import time
import urllib.parse

PROTOCOL_VERSION = 3
# Variant indexes of `Frame` (docs/PROTOCOL.md, "Frames").
HELLO, WELCOME, REJECT, VALUE, RESULT, FAILED, DONE, ERROR, HEARTBEAT = range(9)
NAMES = ["Hello", "Welcome", "Reject", "Value", "Result", "Failed", "Done", "Error", "Heartbeat"]
# The command modes of `Welcome.mode` (docs/PROTOCOL.md, "The command mode"). This worker
# applies its own expression, so it only shows the mode.
MODES = ["per value", "lines", "pipe"]
# Room for a frame's header: a result payload over max_frame - 64 bytes fails instead.
RESULT_OVERHEAD = 64
# The largest frame this worker reads (the master's default limit).
OWN_MAX_FRAME = 16 * 1024 * 1024
HANDSHAKE_TIMEOUT = 30.0


class ProtocolError(Exception):
    """The master sent something this protocol does not allow."""


# --- postcard ---------------------------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def byte_vector(data):
    return varint(len(data)) + data


def string(s):
    return byte_vector(s.encode("utf-8"))


class Reader:
    """Reads postcard values from the bytes of one frame."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def varint(self, max_bytes=10):
        n, shift = 0, 0
        for _ in range(max_bytes):
            if self.pos >= len(self.data):
                raise ProtocolError("truncated varint")
            byte = self.data[self.pos]
            self.pos += 1
            n |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return n
            shift += 7
        raise ProtocolError("varint too long")

    def bytes(self):
        n = self.varint()
        if self.pos + n > len(self.data):
            raise ProtocolError("truncated byte vector")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def string(self):
        return self.bytes().decode("utf-8")

    def option_u64(self):
        tag = self.data[self.pos] if self.pos < len(self.data) else None
        self.pos += 1
        if tag == 0:
            return None
        if tag == 1:
            return self.varint()
        raise ProtocolError("bad Option tag")

    def end(self):
        if self.pos != len(self.data):
            raise ProtocolError("%d trailing bytes" % (len(self.data) - self.pos))


def decode_frame(data):
    """A frame as a tuple: (variant index, fields...)."""
    r = Reader(data)
    kind = r.varint(5)
    if kind == WELCOME:
        frame = (WELCOME, r.varint(3), r.varint(), r.varint(), r.option_u64(), r.varint(),
                 [r.string() for _ in range(r.varint())], r.varint(5))
    elif kind == REJECT:
        frame = (REJECT, r.string())
    elif kind == VALUE:
        frame = (VALUE, r.varint(), r.bytes())
    elif kind == DONE:
        frame = (DONE,)
    elif kind == ERROR:
        frame = (ERROR, r.string())
    elif kind == HEARTBEAT:
        frame = (HEARTBEAT,)
    elif kind < len(NAMES):
        raise ProtocolError("unexpected %s frame" % NAMES[kind])
    else:
        raise ProtocolError("unknown frame variant %d" % kind)
    r.end()
    return frame


def hello(token, name):
    return varint(HELLO) + varint(PROTOCOL_VERSION) + string(token) + string(name)


def result(id_, payload):
    return varint(RESULT) + varint(id_) + byte_vector(payload)


def failed(id_, reason):
    return varint(FAILED) + varint(id_) + string(reason)


def error(message):
    return varint(ERROR) + string(message)


# --- the connection (TCP: a 4-byte big-endian length before each frame) ----

class Connection:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=HANDSHAKE_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.send_lock = threading.Lock()
        self.last_sent = time.monotonic()
        self.last_heard = time.monotonic()

    def send(self, frame):
        with self.send_lock:
            self.sock.sendall(struct.pack(">I", len(frame)) + frame)
            self.last_sent = time.monotonic()

    def _exactly(self, n):
        chunks = []
        while n:
            chunk = self.sock.recv(min(n, 1 << 16))
            if not chunk:
                return None
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def receive(self):
        """The next frame's bytes, or None at the end of the stream."""
        prefix = self._exactly(4)
        if prefix is None:
            return None
        (length,) = struct.unpack(">I", prefix)
        if length > OWN_MAX_FRAME:
            raise ProtocolError("a frame of %d bytes" % length)
        data = self._exactly(length)
        if data is None:
            return None
        self.last_heard = time.monotonic()
        return data

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def split_join_url(url):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "tcp" or not parts.hostname or not parts.port:
        raise SystemExit("expected a join URL tcp://HOST:PORT?token=TOKEN, got %r" % url)
    token = urllib.parse.parse_qs(parts.query).get("token", [""])[0]
    return parts.hostname, parts.port, token


# --- the worker ---------------------------------------------------------------

def log(message):
    print("python_worker: %s" % message, file=sys.stderr, flush=True)


def one_line(text):
    return " ".join(str(text).split()) or "failed"


def compute(expression, payload):
    """The result payload for a value payload (both postcard byte vectors)."""
    r = Reader(payload)
    line = r.bytes()
    r.end()
    x = line.decode("utf-8", "surrogateescape")
    value = eval(expression, {"math": math, "time": time, "x": x})
    return byte_vector(str(value).encode("utf-8", "surrogateescape"))


def run(url, expression, name):
    host, port, token = split_join_url(url)
    conn = Connection(host, port)
    conn.send(hello(token, name))
    data = conn.receive()
    if data is None:
        raise SystemExit("the master closed the connection during the handshake")
    frame = decode_frame(data)
    if frame[0] == REJECT:
        raise SystemExit("rejected by the master: %s" % frame[1])
    if frame[0] != WELCOME:
        raise SystemExit("expected Welcome, got %s" % NAMES[frame[0]])
    _, version, heartbeat_ms, timeout_ms, _value_timeout_ms, max_frame, command, mode = frame
    if version != PROTOCOL_VERSION:
        conn.send(error("this worker speaks protocol version %d, the master %d"
                        % (PROTOCOL_VERSION, version)))
        raise SystemExit("the master speaks protocol version %d" % version)
    mode = MODES[mode] if mode < len(MODES) else "mode %d" % mode
    log("joined %s:%d (the master runs %r, %s)" % (host, port, command, mode))
    conn.sock.settimeout(None)
    heartbeat, silence = heartbeat_ms / 1000.0, timeout_ms / 1000.0

    frames = queue.Queue()
    stopped = threading.Event()

    def read_frames():
        try:
            while True:
                data = conn.receive()
                if data is None:
                    frames.put(None)
                    return
                frames.put(decode_frame(data))
        except Exception as e:  # a broken or closed connection, or a bad frame
            frames.put(e)

    def keep_alive():
        tick = max(0.005, min(heartbeat, silence - heartbeat) / 4)
        while not stopped.wait(tick):
            now = time.monotonic()
            if now - conn.last_heard >= silence:
                frames.put(ProtocolError("the master sent nothing for %gs (heartbeat timeout)" % silence))
                return
            if now - conn.last_sent >= heartbeat:
                try:
                    conn.send(varint(HEARTBEAT))
                except OSError:
                    return

    threading.Thread(target=read_frames, daemon=True).start()
    threading.Thread(target=keep_alive, daemon=True).start()
    done = failures = 0
    try:
        while True:
            frame = frames.get()
            if frame is None:
                raise SystemExit("the master closed the connection before Done")
            if isinstance(frame, Exception):
                message = "the master broke the protocol: %s" % one_line(frame)
                try:
                    conn.send(error(message))
                except OSError:
                    pass
                raise SystemExit(message)
            kind = frame[0]
            if kind == VALUE:
                _, id_, payload = frame
                try:
                    answer = compute(expression, payload)
                except Exception as e:
                    failures += 1
                    conn.send(failed(id_, one_line("%s: %s" % (type(e).__name__, e))))
                    continue
                if len(answer) > max_frame - RESULT_OVERHEAD:
                    failures += 1
                    conn.send(failed(id_, "result of %d bytes exceeds the limit of %d bytes"
                                     % (len(answer), max_frame)))
                    continue
                done += 1
                conn.send(result(id_, answer))
            elif kind == HEARTBEAT:
                pass
            elif kind == ERROR:
                raise SystemExit("the master stopped: %s" % frame[1])
            elif kind == DONE:
                # Values are answered in order, one at a time: all are answered now.
                conn.send(varint(DONE))
                log("done: %d values processed, %d failed" % (done, failures))
                # The master closes once it has read our Done; wait for that (bounded).
                deadline = time.monotonic() + silence
                while True:
                    try:
                        last = frames.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        break
                    if last is None or isinstance(last, Exception):
                        break
                return
            else:
                message = "the master sent an unexpected %s frame" % NAMES[kind]
                conn.send(error(message))
                raise SystemExit(message)
    finally:
        stopped.set()
        conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the join URL: tcp://HOST:PORT?token=TOKEN")
    parser.add_argument("expression", help="a Python expression of x, the input line (a str)")
    parser.add_argument("--name", default=socket.gethostname(), help="the name shown by the master")
    args = parser.parse_args()
    try:
        run(args.url, args.expression, args.name)
    except SystemExit as e:
        if e.code not in (None, 0):
            log(e.code)
            sys.exit(1)
        raise
    except (OSError, ProtocolError) as e:
        log(one_line(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
