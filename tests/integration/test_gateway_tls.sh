#!/bin/bash
# test_gateway_tls.sh - `creto gateway` with TLS on its agent listener
# (docs/gateway.md "TLS"): certificates made here with `openssl req -x509`
# (EC P-256 and RSA), curl --cacert for chat and keep-alive, SSE through
# TLS, versions (1.0/1.1 refused, 1.3 and 1.2 spoken, tls_min_version =
# 1.3), the server's cipher order, ALPN http/1.1 only, a stalled handshake
# cut at header_timeout, close_notify at idle_timeout, plain HTTP on the TLS
# port refused, pipelined requests in records larger than one read, the
# config checks (key mode, mismatched pair, a link, no certificate), SIGHUP
# with a new certificate (and a bad one refused), and the npm `openai`
# client over https.
. "$(dirname "$0")/lib.sh"
. "$CRETO_SRC_DIR/tests/standin/gw_env.sh"
command -v openssl >/dev/null || skip "openssl not installed"
command -v python3 >/dev/null || skip "python3 not installed"
TLSRAW="python3 $STANDIN_DIR/tls_raw.py"

# mkcert NAME ec|rsa [DAYS]: $T/NAME.crt and $T/NAME.key (0600) for 127.0.0.1
mkcert() {
  local kind=$1 alg
  case $2 in
    ec) alg=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
    rsa) alg=(-newkey rsa:2048) ;;
  esac
  (umask 077 && openssl req -x509 "${alg[@]}" -nodes -days "${3:-2}" -subj "/CN=creto-test-$kind" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$T/$kind.key" -out "$T/$kind.crt" 2>"$T/openssl.err") ||
    fail "openssl req $kind: $(cat "$T/openssl.err")"
}

gw_agents
gw_standin s1 --model m1 --interval-ms 20
UP="model m1 = http://127.0.0.1:$PORT_s1"
mkcert ec ec
mkcert rsa rsa
mkcert ec2 ec
TOKA=$(cat "$T/tok.agent-a")
hi='"messages":[{"role":"user","content":"hi"}]'

# ---- config checks (creto gateway --check) ----
tls_conf() { # tls_conf FILE CERT KEY [EXTRA]
  cat >"$1" <<EOF
[gateway]
listen = 127.0.0.1:0
nhi_db = $T/nhi.db
jwks = $T/jwks.json
tls_cert = $2
tls_key = $3
${4:-}
[upstream]
$UP
EOF
}
tls_conf "$T/c1.conf" "$T/ec.crt" "$T/ec.key"
expect 0 --out "config $T/c1.conf: ok" -- "$CRETO" gateway --config "$T/c1.conf" --check
cp "$T/ec.key" "$T/open.key" && chmod 644 "$T/open.key"
tls_conf "$T/c2.conf" "$T/ec.crt" "$T/open.key"
expect 2 --err "tls_key $T/open.key: mode 0644, want no group or other bits (chmod 600)" -- \
  "$CRETO" gateway --config "$T/c2.conf" --check
tls_conf "$T/c3.conf" "$T/ec.crt" "$T/rsa.key"
expect 2 --err "tls_key $T/rsa.key: does not match the certificate in $T/ec.crt" -- \
  "$CRETO" gateway --config "$T/c3.conf" --check
tls_conf "$T/c4.conf" "$T/ec.crt" "$T/ec2.key"
expect 2 --err "does not match the certificate" -- "$CRETO" gateway --config "$T/c4.conf" --check
ln -s "$T/ec.key" "$T/link.key"
tls_conf "$T/c5.conf" "$T/ec.crt" "$T/link.key"
expect 2 --err "tls_key $T/link.key: is a symbolic link" -- "$CRETO" gateway --config "$T/c5.conf" --check
tls_conf "$T/c6.conf" "$T/ec.key" "$T/ec.key"
expect 2 --err "tls_cert $T/ec.key: no PEM certificate" -- "$CRETO" gateway --config "$T/c6.conf" --check
tls_conf "$T/c7.conf" "$T/ec.crt" "$T/missing.key"
expect 3 --err "tls_key $T/missing.key" -- "$CRETO" gateway --config "$T/c7.conf" --check
tls_conf "$T/c8.conf" "$T/ec.crt" "$T/ec.key" "tls_min_version = 1.1"
expect 2 --err "tls_min_version: want 1.2 or 1.3" -- "$CRETO" gateway --config "$T/c8.conf" --check
printf '[gateway]\nlisten = 127.0.0.1:0\nnhi_db = %s\njwks = %s\ntls_cert = %s\n[upstream]\n%s\n' \
  "$T/nhi.db" "$T/jwks.json" "$T/ec.crt" "$UP" >"$T/c9.conf"
expect 2 --err "tls_cert and tls_key go together" -- "$CRETO" gateway --config "$T/c9.conf" --check
# (an expired certificate is refused too: tests/unit/test_gateway_tls.c)

# ---- the gateway on TLS (EC P-256) ----
cp "$T/ec.crt" "$T/srv.crt"
(umask 077 && cp "$T/ec.key" "$T/srv.key")
gw_start "tls_cert = $T/srv.crt
tls_key = $T/srv.key
idle_timeout = 3s" "$UP"
grep -q "event=listening addr=$GW workers=2 tls=1.2+" "$T/gw.err" && ok || fail "listening line: $(grep listening "$T/gw.err")"
URL="https://$GW"
CHAT="$URL/v1/chat/completions"
CURL=(--cacert "$T/ec.crt" -H 'Content-Type: application/json')
expect_status agent-a 200 "chat over TLS" "${CURL[@]}" "$CHAT" -d "{\"model\":\"m1\",$hi}"
grep -q '"object":"chat.completion"' "$T/body" && ok || fail "chat body: $(head -c 300 "$T/body")"
grep -qi '^x-request-id: ' "$T/hdr" && ok || fail "no x-request-id over TLS"
expect_status agent-b 403 "forbidden model over TLS" "${CURL[@]}" "$CHAT" -d "{\"model\":\"m1\",$hi}"
expect_status - 401 "no token over TLS" "${CURL[@]}" "$CHAT" -d "{\"model\":\"m1\",$hi}"
# the Unix socket listener stays plain
got=$(curl -sS -o /dev/null -w '%{http_code}' --unix-socket "$T/gw.sock" http://x/health) || true
[ "$got" = 200 ] && ok || fail "plain unix listener beside TLS: $got"
# keep-alive: two requests on one TLS connection
curl -sS -v "${CURL[@]}" -H "Authorization: Bearer $TOKA" -o /dev/null -o /dev/null \
  "$URL/v1/models" "$URL/v1/models" 2>"$T/ka.err" || fail "keep-alive curl: $(tail -3 "$T/ka.err")"
grep -q 'Re-using existing connection' "$T/ka.err" && ok || fail "TLS connection not reused: $(grep -i connect "$T/ka.err")"
[ "$(grep -c 'SSL connection using' "$T/ka.err")" = 1 ] && ok || fail "more than one handshake for two requests"
grep -q 'ALPN: server accepted http/1.1' "$T/ka.err" && ok || fail "ALPN http/1.1 not accepted: $(grep ALPN "$T/ka.err")"

# ---- versions ----
curl -sS --tlsv1.3 "${CURL[@]}" -o /dev/null -w '%{http_code}' "$URL/health" >"$T/v13" 2>&1
[ "$(cat "$T/v13")" = 200 ] && ok || fail "--tlsv1.3: $(cat "$T/v13")"
curl -sS --tlsv1.2 --tls-max 1.2 "${CURL[@]}" -o /dev/null -w '%{http_code}' "$URL/health" >"$T/v12" 2>&1
[ "$(cat "$T/v12")" = 200 ] && ok || fail "TLS 1.2: $(cat "$T/v12")"
rc=0
curl -sS --tlsv1 --tls-max 1.1 --ciphers 'DEFAULT:@SECLEVEL=0' "${CURL[@]}" -o /dev/null "$URL/health" 2>"$T/v11" || rc=$?
[ "$rc" = 35 ] && ok || fail "TLS 1.1 not refused (curl exit $rc): $(cat "$T/v11")"
# the refusal comes from the server (protocol_version alert), not the client's own policy
openssl s_client -connect "$GW" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null >"$T/s11.out" 2>&1
grep -qi 'alert protocol version' "$T/s11.out" && ok || fail "TLS 1.1: no protocol_version alert: $(tail -5 "$T/s11.out")"
openssl s_client -connect "$GW" -tls1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null >"$T/s10.out" 2>&1
grep -qi 'alert protocol version' "$T/s10.out" && ok || fail "TLS 1.0: no protocol_version alert: $(tail -5 "$T/s10.out")"
# TLS 1.2: the server's order (AES-128-GCM first) wins over the client's
openssl s_client -connect "$GW" -tls1_2 -CAfile "$T/ec.crt" \
  -cipher 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256' </dev/null >"$T/s12.out" 2>&1
grep -q 'Cipher is ECDHE-ECDSA-AES128-GCM-SHA256' "$T/s12.out" && ok || fail "server cipher order: $(grep -i cipher "$T/s12.out" | head -3)"
# no session tickets, no resumption
openssl s_client -connect "$GW" -tls1_3 -CAfile "$T/ec.crt" -sess_out "$T/sess" </dev/null >"$T/s13.out" 2>&1
grep -q 'New Session Ticket\|TLS session ticket:' "$T/s13.out" && fail "a session ticket was sent" || ok
# no static RSA or CBC in 1.2
openssl s_client -connect "$GW" -tls1_2 -cipher 'AES128-SHA:AES256-SHA:ECDHE-ECDSA-AES128-SHA' </dev/null >"$T/scbc.out" 2>&1
grep -q 'Cipher is (NONE)\|handshake failure\|no shared cipher' "$T/scbc.out" && ok || fail "a CBC or static-RSA suite was accepted: $(grep -i cipher "$T/scbc.out" | head -2)"

# ---- ALPN ----
$TLSRAW alpn "$GW" "$T/ec.crt" h2 http/1.1 >"$T/alpn1"
grep -q '^alpn http/1.1' "$T/alpn1" && ok || fail "ALPN h2,http/1.1: $(cat "$T/alpn1")"
$TLSRAW alpn "$GW" "$T/ec.crt" h2 >"$T/alpn2"
grep -qi '^refused.*no.application.protocol' "$T/alpn2" && ok ||
  fail "ALPN h2 alone not refused: $(cat "$T/alpn2")"
$TLSRAW alpn "$GW" "$T/ec.crt" >"$T/alpn3"
grep -q '^alpn None' "$T/alpn3" && ok || fail "no ALPN offered: $(cat "$T/alpn3")"

# ---- streaming through TLS: events one by one ----
$TLSRAW stream "$GW" "$T/ec.crt" "$TOKA" "{\"model\":\"m1\",\"stream\":true,$hi}" >"$T/s.out"
grep -q '^done 1' "$T/s.out" && ok || fail "TLS stream: $(cat "$T/s.out")"
grep -q '^events 10' "$T/s.out" && ok || fail "TLS stream events: $(cat "$T/s.out")"
grep -q '^first_before_last 1' "$T/s.out" && ok || fail "TLS stream held back: $(cat "$T/s.out")"
echo "spaced events over TLS (replica write -> client read): $(grep -E 'delay|reads' "$T/s.out" | tr '\n' ' ')"
grep -q '"end":"complete"' "$T/gw.err" && ok || fail "stream not recorded complete"

# ---- pipelined requests in large records (plaintext left inside OpenSSL) ----
$TLSRAW pipeline "$GW" "$T/ec.crt" "$TOKA" 4 >"$T/pipe.out"
grep -q '^statuses 200 200 200 200$' "$T/pipe.out" && ok || fail "pipelined over TLS: $(cat "$T/pipe.out")"

# ---- timeouts and refusals ----
# a handshake that stalls is cut at header_timeout (1 s), not idle_timeout
$TLSRAW hello_stall "$GW" >"$T/hs.out"
grep -q '^result closed\|^result reset' "$T/hs.out" && ok || fail "stalled handshake kept open: $(cat "$T/hs.out")"
echo "stalled handshake closed after $(grep seconds "$T/hs.out" | cut -d' ' -f2) s (header_timeout 1 s)"
# a handshake with nothing after it: closed at idle_timeout (3 s) with close_notify
$TLSRAW idle "$GW" "$T/ec.crt" >"$T/idle.out"
grep -q '^result close_notify' "$T/idle.out" && ok || fail "idle TLS connection: $(cat "$T/idle.out")"
grep -q '^version TLSv1.3' "$T/idle.out" && ok || fail "default version: $(cat "$T/idle.out")"
# openssl s_client: handshake, then nothing: the gateway closes it
timeout 15 openssl s_client -connect "$GW" -CAfile "$T/ec.crt" < <(sleep 12) >"$T/sc.out" 2>&1
rc=$?
[ "$rc" != 124 ] && ok || fail "s_client left open past idle_timeout"
grep -q 'Verify return code: 0 (ok)' "$T/sc.out" && ok || fail "s_client handshake: $(tail -5 "$T/sc.out")"
# plain HTTP on the TLS port: one plain 400, then the close
got=$(curl -sS -o "$T/plain.body" -w '%{http_code}' --max-time 5 "http://$GW/health" 2>&1)
[ "$got" = 400 ] && ok || fail "plain HTTP to the TLS port: $got"
grep -q '"code":"tls_required"' "$T/plain.body" && ok || fail "plain HTTP answer: $(cat "$T/plain.body")"

# ---- the npm openai client over https ----
NPMDIR=$CRETO_BUILD_DIR/npm-openai
if [ ! -f "$NPMDIR/node_modules/openai/package.json" ]; then
  if command -v npm >/dev/null; then
    mkdir -p "$NPMDIR"
    cp "$STANDIN_DIR/openai/package.json" "$NPMDIR/"
    npm install --prefix "$NPMDIR" --no-audit --no-fund --silent >"$T/npm.log" 2>&1 || echo "npm install failed"
  fi
fi
if [ -f "$NPMDIR/node_modules/openai/package.json" ]; then
  cp "$STANDIN_DIR/openai/stream_chat.mjs" "$NPMDIR/"
  NODE_EXTRA_CA_CERTS="$T/ec.crt" node "$NPMDIR/stream_chat.mjs" "$URL" "$T/tok.agent-a" m1 >"$T/oa.out" 2>"$T/oa.err"
  grep -q '^chunks=8' "$T/oa.out" && ok || fail "openai over https: $(cat "$T/oa.out" "$T/oa.err")"
  rc=0
  node "$NPMDIR/stream_chat.mjs" "$URL" "$T/tok.agent-a" m1 >/dev/null 2>"$T/oa2.err" || rc=$?
  [ "$rc" = 1 ] && ok || fail "openai trusted an unknown certificate"
else
  echo "npm openai package not available: the openai check is skipped"
fi

# ---- SIGHUP: a new certificate for new connections; an open one keeps going ----
rm -f "$T/go"
$TLSRAW hold "$GW" "$T/ec.crt" "$TOKA" "$T/go" >"$T/hold.out" &
HOLD=$!
wait_line "$T/hold.out" '^ready' >/dev/null || fail "hold connection did not start"
cp "$T/rsa.crt" "$T/srv.crt.new" && mv "$T/srv.crt.new" "$T/srv.crt"
(umask 077 && cp "$T/rsa.key" "$T/srv.key.new") && mv "$T/srv.key.new" "$T/srv.key"
kill -HUP "$GW_PID"
wait_line "$T/gw.err" 'event=tls_reloaded' >/dev/null && ok || fail "no tls_reloaded: $(tail -3 "$T/gw.err")"
touch "$T/go"
wait "$HOLD"
grep -q '^statuses 200 200' "$T/hold.out" && ok || fail "connection across the reload: $(cat "$T/hold.out")"
expect_status agent-a 200 "new certificate after SIGHUP" --cacert "$T/rsa.crt" -H 'Content-Type: application/json' \
  "$CHAT" -d "{\"model\":\"m1\",$hi}"
rc=0
curl -sS --cacert "$T/ec.crt" -o /dev/null "$URL/health" 2>/dev/null || rc=$?
[ "$rc" = 60 ] && ok || fail "the old certificate still served (curl exit $rc)"
openssl s_client -connect "$GW" -tls1_2 -CAfile "$T/rsa.crt" </dev/null >"$T/srsa.out" 2>&1
grep -q 'Cipher is ECDHE-RSA-AES128-GCM-SHA256' "$T/srsa.out" && ok || fail "RSA key: $(grep -i cipher "$T/srsa.out" | head -2)"
# a mismatched pair: the reload is refused, the RSA pair stays
cp "$T/ec.crt" "$T/srv.crt.new" && mv "$T/srv.crt.new" "$T/srv.crt"
kill -HUP "$GW_PID"
wait_line "$T/gw.err" "event=reload_refused msg=\"tls_key $T/srv.key: does not match" >/dev/null && ok ||
  fail "mismatched pair not refused: $(tail -3 "$T/gw.err")"
curl -sS --cacert "$T/rsa.crt" -o /dev/null -w '%{http_code}' "$URL/health" >"$T/after" 2>&1
[ "$(cat "$T/after")" = 200 ] && ok || fail "after a refused reload: $(cat "$T/after")"
# tls_min_version = 1.3 by SIGHUP: TLS 1.2 clients refused from then on
cp "$T/rsa.crt" "$T/srv.crt.new" && mv "$T/srv.crt.new" "$T/srv.crt"
sed -i "s|^idle_timeout = 3s|idle_timeout = 3s\ntls_min_version = 1.3|" "$T/gw.conf"
kill -HUP "$GW_PID"
wait_line "$T/gw.err" 'event=tls_reloaded cert=.* min_version=1.3' >/dev/null && ok || fail "min version reload: $(tail -3 "$T/gw.err")"
rc=0
curl -sS --tls-max 1.2 --cacert "$T/rsa.crt" -o /dev/null "$URL/health" 2>/dev/null || rc=$?
[ "$rc" = 35 ] && ok || fail "TLS 1.2 accepted with tls_min_version = 1.3 (curl exit $rc)"
curl -sS --cacert "$T/rsa.crt" -o /dev/null -w '%{http_code}' "$URL/health" >"$T/after13" 2>&1
[ "$(cat "$T/after13")" = 200 ] && ok || fail "TLS 1.3 after min 1.3: $(cat "$T/after13")"

# ---- concurrency: wrk over TLS on both workers, a SIGHUP in the middle ----
if command -v wrk >/dev/null; then
  (sleep 1; kill -HUP "$GW_PID") &
  HUPPER=$!
  wrk -t2 -c16 -d3s -H "Authorization: Bearer $TOKA" "$URL/v1/models" >"$T/wrk.out" 2>&1 || fail "wrk: $(cat "$T/wrk.out")"
  wait "$HUPPER"
  grep -q 'requests in' "$T/wrk.out" && ! grep -q 'Non-2xx\|Socket errors' "$T/wrk.out" && ok ||
    fail "wrk over TLS: $(cat "$T/wrk.out")"
  echo "wrk over TLS (16 keep-alive connections, /v1/models): $(grep 'Requests/sec' "$T/wrk.out")"
fi

# ---- memory per idle TLS connection (printed, not asserted) ----
rss() { awk '/^VmRSS/ {print $2}' "/proc/$GW_PID/status"; }
NIDLE=400
mkfifo "$T/idle.in"
$TLSRAW idle_many "$GW" "$T/rsa.crt" 20 <"$T/idle.in" >"$T/warm.out" &
WARM=$!
exec {W}>"$T/idle.in"
wait_line "$T/warm.out" '^ready' >/dev/null
before=$(rss)
mkfifo "$T/idle2.in"
$TLSRAW idle_many "$GW" "$T/rsa.crt" "$NIDLE" <"$T/idle2.in" >"$T/many.out" &
MANY=$!
exec {M}>"$T/idle2.in"
if wait_line "$T/many.out" '^ready' >/dev/null; then
  sleep 0.5
  after=$(rss)
  echo "memory: $NIDLE idle TLS connections: +$((after - before)) KiB RSS = $(( (after - before) * 1024 / NIDLE )) bytes each"
  ok
else
  fail "idle connections: $(cat "$T/many.out")"
fi
exec {M}>&-
wait "$MANY" 2>/dev/null
exec {W}>&-
wait "$WARM" 2>/dev/null

gw_stop
finish
