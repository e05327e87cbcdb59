# install_lib.sh - helpers of test_install.sh, test_units.sh and test_deb.sh
# (source after lib.sh).

# The install prefix the build tree was configured with.
build_prefix() {
  sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$CRETO_BUILD_DIR/CMakeCache.txt"
}

# install_into ROOT: `cmake --install` of the build tree under DESTDIR=ROOT.
install_into() {
  DESTDIR=$1 cmake --install "$CRETO_BUILD_DIR" >"$T/install.log" 2>&1
}

# The compiler and sanitizer flags of the build tree: a client of a sanitized
# libcreto.a links the sanitizer runtimes too.  Sets CLIENT_CC, CLIENT_CFLAGS.
client_like_build() {
  local c="$CRETO_BUILD_DIR/CMakeCache.txt"
  CLIENT_CC=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$c")
  CLIENT_CFLAGS=
  grep -q '^CRETO_SANITIZE:BOOL=ON' "$c" && CLIENT_CFLAGS="-fsanitize=address,undefined"
  grep -q '^CRETO_SANITIZE_THREAD:BOOL=ON' "$c" && CLIENT_CFLAGS="-fsanitize=thread"
  [ -n "$CLIENT_CC" ] || CLIENT_CC=cc
}

# build_client PCDIR PREFIX OUT: compiles a program that includes every
# installed public header and links libcreto through creto.pc found in PCDIR,
# its prefix variable pointed at PREFIX (the DESTDIR copy), then runs it.
build_client() {
  local pcdir=$1 prefix=$2 out=$3 h
  {
    for h in "$prefix"/include/creto/*.h; do echo "#include <creto/$(basename "$h")>"; done
    cat <<'C'
#include <stdio.h>
#include <string.h>
int main(void)
{
	static const char want[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	uint8_t d[CRETO_HASH_MAX];
	char hex[2 * CRETO_HASH_MAX + 1];
	creto_err e;
	creto_err_clear(&e);
	creto_hash_alg alg = creto_hash_from_name("sha256");
	if (creto_hash_buf(alg, "abc", 3, d, &e) != CRETO_OK) {
		fprintf(stderr, "hash: %s\n", e.msg);
		return 1;
	}
	for (size_t i = 0; i < creto_hash_len(alg); i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	printf("%s %s\n", creto_hash_name(alg), hex);
	return strcmp(hex, want) == 0 ? 0 : 1;
}
C
  } >"$out.c"
  local flags
  flags=$(PKG_CONFIG_PATH=$pcdir pkg-config --define-variable=prefix="$prefix" --cflags --libs creto) || return 1
  # shellcheck disable=SC2086 # pkg-config output is a word list
  ${CLIENT_CC:-cc} ${CLIENT_CFLAGS:-} -std=c11 -Wall -Wextra -Werror -o "$out" "$out.c" $flags >"$out.log" 2>&1 || return 1
  "$out"
}
