#!/usr/bin/env python3
# raw.py - raw HTTP/1.1 exchanges with the gateway for the tests that curl
# cannot express (smuggling, slowloris, pipelining, disconnects, timing).
# Prints results as "key value" lines; every wait is bounded.
#
#   raw.py send HOST:PORT FILE        send FILE's bytes, print every status line received
#   raw.py slow HOST:PORT             send half a head, then wait: print status and seconds
#   raw.py stream HOST:PORT TOKEN BODY  read an SSE answer; per event the delay (ms)
#                                     between standin_sent_ms and arrival
#   raw.py abort HOST:PORT TOKEN BODY read the first event, then close
import json, re, socket, sys, time


def conn(hp):
    h, p = hp.rsplit(':', 1)
    s = socket.create_connection((h, int(p)), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_all(s, limit=5.0):
    out = b''
    end = time.time() + limit
    s.settimeout(0.5)
    while time.time() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not d:
            break
        out += d
    return out


def post(hp, token, body):
    b = body.encode()
    head = (f'POST /v1/chat/completions HTTP/1.1\r\nHost: {hp}\r\nAuthorization: Bearer {token}\r\n'
            f'Content-Type: application/json\r\nContent-Length: {len(b)}\r\n\r\n').encode()
    s = conn(hp)
    s.sendall(head + b)
    return s


def main():
    cmd, hp = sys.argv[1], sys.argv[2]
    if cmd == 'send':
        data = open(sys.argv[3], 'rb').read()
        s = conn(hp)
        s.sendall(data)
        out = recv_all(s, 3.0)
        for m in re.finditer(rb'HTTP/1\.1 (\d{3})', out):
            print('status', m.group(1).decode())
        print('closed', 1)
    elif cmd == 'slow':
        s = conn(hp)
        t0 = time.time()
        s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n')
        for _ in range(5):  # a slowloris trickle: one byte a while
            time.sleep(0.1)
            s.sendall(b'X')
        out = recv_all(s, 6.0)
        m = re.search(rb'HTTP/1\.1 (\d{3})', out)
        print('status', m.group(1).decode() if m else 'none')
        print('seconds', round(time.time() - t0, 1))
    elif cmd in ('stream', 'abort'):
        t_send = time.time()
        s = post(hp, sys.argv[3], sys.argv[4])
        ttfb = None
        buf = b''
        delays = []
        events = 0
        s.settimeout(5)
        end = time.time() + 15
        while time.time() < end:
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            if not d:
                break
            now = time.time() * 1000.0
            if ttfb is None and b'data: ' in buf + d:
                ttfb = now - t_send * 1000.0
            buf += d
            for m in re.finditer(rb'"standin_sent_ms":([0-9.]+)', d):
                delays.append(now - float(m.group(1)))
            events += d.count(b'data: ')
            if cmd == 'abort' and b'standin_sent_ms' in buf:
                s.close()
                print('closed_after_first_event', 1)
                return
            if b'\r\n0\r\n\r\n' in buf:
                break
        print('events', events)
        print('done', 1 if b'data: [DONE]' in buf else 0)
        print('error_event', 1 if b'"error"' in buf.split(b'\r\n\r\n', 1)[-1] else 0)
        print('usage_chunk', 1 if b'"choices":[],"usage"' in buf else 0)
        if ttfb is not None:
            print('first_event_ms', round(ttfb, 3))
        if delays:
            delays.sort()
            print('delay_max_ms', round(delays[-1], 2))
            print('delay_p50_ms', round(delays[len(delays) // 2], 2))


main()
