#!/bin/bash
# test_hsm_layering.sh - the layering rules of issue 11 §9 around hsm, keys,
# sig and nhi/backup, checked on the sources so they cannot come back:
#  - no header cycle: creto/hsm.h does not include creto/keys.h;
#  - hsm uses ML-DSA only through the public creto/sig.h, never sig's
#    private sig/mldsa/ headers (and nothing outside src/sig does);
#  - one pkcs11: URI parser (src/hsm/uri.c): nhi/backup.c cuts no URI by
#    hand;
#  - one envelope: AES-GCM appears in src/hsm/seal.c only among hsm and nhi;
#  - hsm never includes the audit log: it reports through an event sink.
. "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cd "$SRC" || fail "no source tree"

check_absent() { # check_absent WHAT PATTERN FILES...
  local what=$1 pat=$2; shift 2
  local hits
  hits=$(grep -nE -- "$pat" "$@" 2>/dev/null)
  [ -z "$hits" ] && ok || fail "$what: $hits"
}

check_absent "creto/hsm.h includes creto/keys.h (header cycle)" '#include "creto/keys.h"' include/creto/hsm.h
check_absent "sig's private ML-DSA header used outside src/sig" '#include "sig/mldsa/' \
  $(find src -name '*.[ch]' ! -path 'src/sig/*')
check_absent "hsm includes a sig-internal header" '#include "sig/' src/hsm/*.c src/hsm/*.h
check_absent "nhi/backup.c parses pkcs11: URIs by hand" 'pin-value=|strchr\(uri|"pkcs11:pin' src/nhi/backup.c
check_absent "an AES-GCM envelope outside src/hsm/seal.c" 'EVP_aes_256_gcm|EVP_CTRL_GCM' \
  $(ls src/hsm/*.c src/nhi/*.c | grep -v '^src/hsm/seal.c$')
check_absent "hsm includes the audit log" '#include "creto/audit.h"|#include "audit/' src/hsm/*.c src/hsm/*.h include/creto/hsm.h
# the public headers still compile on their own, in either order
for h in hsm keys sig; do
  printf '#include "creto/%s.h"\nint main(void) { return 0; }\n' "$h" >"$T/inc_$h.c"
  cc -std=c11 -fsyntax-only -I"$SRC/include" -I"$SRC/src" "$T/inc_$h.c" 2>"$T/cc.err" && ok \
    || fail "creto/$h.h does not compile alone: $(cat "$T/cc.err")"
done
finish
