#!/bin/bash
# test_nhi_fifo.sh - a FIFO (or other special file) where an NHI backup is
# expected is refused at once, never waited on (issue: untrusted files must
# never block creto): `nhi restore` and `nhi resolve --backup` return exit 1
# naming the file, and the store they would replace is untouched.
. "$(dirname "$0")/lib.sh"
hsm_env
command -v softhsm2-util >/dev/null || skip "softhsm2-util missing"
command -v pkcs11-tool >/dev/null || skip "pkcs11-tool (opensc) missing"

softhsm2-util --init-token --free --label nhififo --so-pin 87654321 --pin 123456 >/dev/null
echo 123456 >"$T/pin"
chmod 600 "$T/pin"
pkcs11-tool --module "$HSM_MODULE" --token-label nhififo --login --pin 123456 \
  --keygen --key-type AES:32 --sensitive --usage-wrap --label nhi-backup-key --id 10 >/dev/null 2>&1
HOPT=(--module "$HSM_MODULE" --pin-file "$T/pin")
WRAP="pkcs11:token=nhififo;object=nhi-backup-key;type=secret-key"

DB=$T/nhi.db
expect 0 -- "$CRETO" nhi init --db "$DB"
expect 0 -- "$CRETO" nhi add --db "$DB" --id agent-1 --name "Agent 1" --scope tool:search
cp "$DB" "$T/before.db"
mkfifo "$T/x.bak"
# timeout only guards the test against the old behaviour (a hang); the
# command itself must return at once.
expect 1 --err "x.bak" -- timeout 20 "$CRETO" nhi restore "$T/x.bak" --wrap-key "$WRAP" "${HOPT[@]}" --db "$DB"
cmp -s "$DB" "$T/before.db" && ok || fail "store changed by a refused restore"
finish
