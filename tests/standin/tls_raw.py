#!/usr/bin/env python3
# tls_raw.py - TLS exchanges with the gateway that curl cannot express
# (tests/integration/test_gateway_tls.sh).  Prints "key value" lines; every
# wait is bounded.
#
#   tls_raw.py hello_stall HOST:PORT          TCP connect, half a ClientHello, wait for the close
#   tls_raw.py idle HOST:PORT CA              handshake, send nothing, wait for the close
#                                             (close_notify or a bare EOF)
#   tls_raw.py alpn HOST:PORT CA PROTO...     handshake offering only PROTOs
#   tls_raw.py stream HOST:PORT CA TOKEN BODY an SSE answer over TLS: events, and whether
#                                             the first arrived before the replica wrote the last
#   tls_raw.py pipeline HOST:PORT CA TOKEN N  N chat requests in one write (records larger
#                                             than the gateway's first read): every status
#   tls_raw.py hold HOST:PORT CA TOKEN FILE   open a connection, answer one request, wait until
#                                             FILE exists, send another on the same connection
#   tls_raw.py idle_many HOST:PORT CA N       N connections, each handshaken and left idle (CA "-":
#                                             plain TCP); prints "ready", waits for stdin to close
import json, re, socket, ssl, sys, time, os


def split(hp):
    h, p = hp.rsplit(':', 1)
    return h, int(p)


def tls(hp, ca, alpn=('http/1.1',)):
    ctx = ssl.create_default_context(cafile=ca)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    raw = socket.create_connection(split(hp), timeout=10)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ctx.wrap_socket(raw, server_hostname=split(hp)[0], suppress_ragged_eofs=False)


def request(hp, token, body, close=False):
    b = body.encode()
    return (f'POST /v1/chat/completions HTTP/1.1\r\nHost: {hp}\r\nAuthorization: Bearer {token}\r\n'
            f'Content-Type: application/json\r\nContent-Length: {len(b)}\r\n'
            + ('Connection: close\r\n' if close else '') + '\r\n').encode() + b


def read_statuses(s, want, limit=10.0):
    out = b''
    end = time.time() + limit
    s.settimeout(1.0)
    while time.time() < end and len(re.findall(rb'HTTP/1\.1 (\d{3})', out)) < want:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except (ssl.SSLError, OSError):
            break
        if not d:
            break
        out += d
    return [m.decode() for m in re.findall(rb'HTTP/1\.1 (\d{3})', out)]


def wait_close(s, limit):
    """'close_notify', 'eof' (no close_notify), 'reset' or 'open' after limit seconds."""
    t0 = time.time()
    s.settimeout(0.25)
    while time.time() - t0 < limit:
        try:
            d = s.recv(4096)
        except socket.timeout:
            continue
        except ssl.SSLEOFError:
            return 'eof', time.time() - t0
        except ssl.SSLError as e:
            return 'tls_error:' + (e.reason or 'unknown'), time.time() - t0
        except ConnectionResetError:
            return 'reset', time.time() - t0
        if not d:
            return 'close_notify', time.time() - t0
    return 'open', time.time() - t0


def main():
    cmd, hp = sys.argv[1], sys.argv[2]
    if cmd == 'hello_stall':
        s = socket.create_connection(split(hp), timeout=10)
        # a TLS record header announcing a 512-byte ClientHello, and 4 bytes of it
        s.sendall(b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc')
        s.settimeout(0.25)
        t0 = time.time()
        how = 'open'
        while time.time() - t0 < 8:
            try:
                d = s.recv(4096)
            except socket.timeout:
                continue
            except ConnectionResetError:
                how = 'reset'
                break
            if not d:
                how = 'closed'
                break
        print('result', how)
        print('seconds', round(time.time() - t0, 1))
    elif cmd == 'idle':
        s = tls(hp, sys.argv[3])
        print('version', s.version())
        print('alpn', s.selected_alpn_protocol())
        how, secs = wait_close(s, 10)
        print('result', how)
        print('seconds', round(secs, 1))
    elif cmd == 'alpn':
        try:
            s = tls(hp, sys.argv[3], tuple(sys.argv[4:]))
            print('alpn', s.selected_alpn_protocol())
            s.close()
        except ssl.SSLError as e:
            print('refused', e.reason or str(e))
    elif cmd == 'stream':
        s = tls(hp, sys.argv[3])
        s.sendall(request(hp, sys.argv[4], sys.argv[5]))
        buf = b''
        arrivals = []  # (arrival ms, [standin_sent_ms in this read])
        s.settimeout(5)
        end = time.time() + 15
        while time.time() < end:
            try:
                d = s.recv(65536)
            except (socket.timeout, ssl.SSLError, OSError):
                break
            if not d:
                break
            now = time.time() * 1000.0
            buf += d
            sent = [float(m) for m in re.findall(rb'"standin_sent_ms":([0-9.]+)', d)]
            if sent:
                arrivals.append((now, sent))
            if b'\r\n0\r\n\r\n' in buf:
                break
        events = buf.count(b'data: ')
        print('events', events)
        print('done', 1 if b'data: [DONE]' in buf else 0)
        print('reads_with_events', len(arrivals))
        if arrivals:
            last_sent = max(x for _, l in arrivals for x in l)
            # the first event reached the client before the replica wrote the last one
            print('first_before_last', 1 if arrivals[0][0] < last_sent else 0)
            delays = sorted(a - x for a, l in arrivals for x in l)
            print('delay_p50_ms', round(delays[len(delays) // 2], 2))
            print('delay_max_ms', round(delays[-1], 2))
    elif cmd == 'pipeline':
        n = int(sys.argv[5])
        body = json.dumps({'model': 'm1', 'max_tokens': 2,
                           'messages': [{'role': 'user', 'content': 'x' * 3000}]})
        data = b''.join(request(hp, sys.argv[4], body, close=(i == n - 1)) for i in range(n))
        s = tls(hp, sys.argv[3])
        s.sendall(data)
        print('bytes', len(data))
        print('statuses', ' '.join(read_statuses(s, n)))
    elif cmd == 'hold':
        s = tls(hp, sys.argv[3])
        body = '{"model":"m1","max_tokens":2,"messages":[{"role":"user","content":"hi"}]}'
        s.sendall(request(hp, sys.argv[4], body))
        first = read_statuses(s, 1)
        print('ready', flush=True)
        end = time.time() + 15
        while not os.path.exists(sys.argv[5]) and time.time() < end:
            time.sleep(0.05)
        s.sendall(request(hp, sys.argv[4], body, close=True))
        print('statuses', ' '.join(first + read_statuses(s, 1)))
    elif cmd == 'idle_many':
        n = int(sys.argv[4])
        if sys.argv[3] == '-':  # plain connections, for comparison
            conns = [socket.create_connection(split(hp), timeout=10) for _ in range(n)]
        else:
            conns = [tls(hp, sys.argv[3]) for _ in range(n)]
        print('ready', len(conns), flush=True)
        sys.stdin.read()
        for c in conns:
            c.close()


main()
