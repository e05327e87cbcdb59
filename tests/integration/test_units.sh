#!/bin/bash
# test_units.sh - the systemd units of deploy/systemd (every one there, so a
# unit added later is checked too), as `make install` installs them:
#  - `systemd-analyze verify --root=DESTDIR` is clean: ExecStart resolves to
#    the installed program, Documentation= to the installed man pages
#    (MANPATH), the targets they name exist (copied from the host);
#  - `systemd-analyze security --offline=true` rates every service at
#    exposure <= 2.0 (--threshold=20);
#  - every service runs as the system user creto (never DynamicUser: the
#    SoftHSM2 token needs a stable owner), with NoNewPrivileges,
#    ProtectSystem=strict, UMask=0077 and no capability but
#    CAP_NET_BIND_SERVICE;
#  - a unit that runs active isolation probes can try to get out: no
#    IPAddressDeny=, no PrivateNetwork=, and AF_INET, AF_INET6 and
#    AF_NETLINK allowed (a filtered unit would always report "isolated").
# Where systemd is PID 1, each service's [Service] sandbox is also applied
# to creto through systemd-run; elsewhere (CI containers) that part is
# skipped with the reason printed, and the offline checks still run.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/install_lib.sh"
command -v systemd-analyze >/dev/null || skip "systemd-analyze missing (apt-get install systemd)"
prefix=$(build_prefix)
R=$T/root
install_into "$R" && ok || { fail "cmake --install: $(tail -3 "$T/install.log")"; finish; }
case "$prefix" in /usr) unitdir=$R/lib/systemd/system ;; *) unitdir=$R$prefix/lib/systemd/system ;; esac
# what the units reference from the OS: the targets and slices
mkdir -p "$R/lib/systemd/system" "$R/etc/systemd/system"
cp -a /lib/systemd/system/*.target /lib/systemd/system/*.slice "$R/lib/systemd/system/" 2>/dev/null
man_ok=0
grep -q '^CRETO_DOCS:BOOL=ON' "$CRETO_BUILD_DIR/CMakeCache.txt" && man_ok=1
[ $man_ok = 1 ] || echo "note: CRETO_DOCS=OFF in this build tree: Documentation= not resolved by verify"

units=$(cd "$CRETO_SRC_DIR/deploy/systemd" && ls ./*.service ./*.timer ./*.socket ./*.path 2>/dev/null | sed 's|^\./||')
# programs a unit runs that are not creto's (p11-kit on the HSM host, kill) come
# from their own Debian packages: copy the host's into the root so verify
# resolves ExecStart
for x in $(sed -n 's/^Exec[A-Za-z]*=[-@+!]\{0,2\}\(\/[^ ]*\).*/\1/p' "$CRETO_SRC_DIR"/deploy/systemd/*.service | sort -u); do
  case $x in */creto) continue ;; esac
  if [ -x "$x" ]; then mkdir -p "$R$(dirname "$x")" && cp -a "$x" "$R$x"
  else echo "note: $x (not creto's) is not installed here: verify of its unit will say so"; fi
done
[ -n "$units" ] && ok || fail "no units in deploy/systemd"
for n in $units; do
  u=$unitdir/$n
  [ -s "$u" ] || { fail "$n not installed in $unitdir"; continue; }
  # systemd-analyze verify runs man(1) for Documentation=man:...
  if [ $man_ok = 1 ]; then
    MANPATH=$R$prefix/share/man: systemd-analyze verify --root="$R" "$u" >"$T/v.out" 2>&1 && ok ||
      fail "verify $n: $(cat "$T/v.out")"
  else
    SYSTEMD_LOG_LEVEL=err systemd-analyze verify --man=no --root="$R" "$u" >"$T/v.out" 2>&1 && ok ||
      fail "verify $n: $(cat "$T/v.out")"
  fi
  [ -s "$T/v.out" ] && fail "verify $n is not silent: $(cat "$T/v.out")"
done

svc() { sed -n '/^\[Service\]/,/^\[/p' "$1"; }
for n in $units; do
  case $n in *.service) ;; *) continue ;; esac
  u=$unitdir/$n
  systemd-analyze security --offline=true --threshold=20 --root="$R" "$u" >"$T/s.out" 2>&1 && ok ||
    fail "security $n above 2.0: $(grep 'Overall exposure' "$T/s.out")"
  grep -o "Overall exposure level.*" "$T/s.out"
  s=$(svc "$u")
  # creto's system user; the HSM host's p11-kit server runs as its own
  # user, which owns the token there (docs/hsm-remote.md)
  grep -qx 'User=creto' <<<"$s" || grep -qx 'User=creto-hsm' <<<"$s" && ok || fail "$n: not User=creto (or creto-hsm)"
  grep -q '^DynamicUser=yes' <<<"$s" && fail "$n: DynamicUser (the token needs a stable owner)" || ok
  for d in NoNewPrivileges=yes ProtectSystem=strict UMask=0077 ProtectHome=yes PrivateTmp=yes \
           PrivateDevices=yes MemoryDenyWriteExecute=yes LockPersonality=yes RestrictSUIDSGID=yes \
           RestrictNamespaces=yes RestrictRealtime=yes ProtectClock=yes ProtectHostname=yes \
           ProtectKernelTunables=yes ProtectKernelModules=yes ProtectKernelLogs=yes; do
    grep -qx "$d" <<<"$s" && ok || fail "$n: lacks $d"
  done
  caps=$(sed -n 's/^CapabilityBoundingSet=//p' <<<"$s" | tail -1)
  case "$caps" in ""|CAP_NET_BIND_SERVICE) ok ;; *) fail "$n: CapabilityBoundingSet=$caps" ;; esac
  grep -q '^RestrictAddressFamilies=' <<<"$s" && ok || fail "$n: no RestrictAddressFamilies"
  if grep -q '^ExecStart=.* isolation \(check\|watch\).*--active' <<<"$s"; then
    grep -q '^IPAddressDeny=' <<<"$s" && fail "$n: active probes behind IPAddressDeny" || ok
    grep -q '^PrivateNetwork=yes' <<<"$s" && fail "$n: active probes in a private network" || ok
    fams=$(sed -n 's/^RestrictAddressFamilies=//p' <<<"$s")
    for fam in AF_INET AF_INET6 AF_NETLINK; do
      [[ " $fams " == *" $fam "* ]] && ok || fail "$n: active probes without $fam"
    done
  fi
done

# Under systemd (PID 1): the sandbox of each service applied to creto.
if [ "$(cat /proc/1/comm 2>/dev/null)" != systemd ] || ! command -v systemd-run >/dev/null; then
  echo "note: systemd-run part skipped: PID 1 is '$(cat /proc/1/comm 2>/dev/null)', not systemd (a container without systemd)"
elif ! systemctl is-system-running >/dev/null 2>&1 && [ "$(systemctl is-system-running 2>/dev/null)" != degraded ]; then
  echo "note: systemd-run part skipped: systemd is '$(systemctl is-system-running 2>&1)'"
else
  for n in $units; do
    case $n in *.service) ;; *) continue ;; esac
    props=()
    while IFS= read -r line; do
      case "$line" in
        ''|'#'*|'['*|ExecStart=*|ExecReload=*|Type=*|User=*|Group=*|Restart*|Timeout*|Watchdog*|StateDirectory*|ReadWritePaths=*|Notify*) ;;
        *=*) props+=(-p "$line") ;;
      esac
    done < <(svc "$unitdir/$n")
    # DynamicUser stands in for the creto user, which this host may lack.
    systemd-run --quiet --wait --pipe --collect -p DynamicUser=yes "${props[@]}" \
      "$CRETO" --version >"$T/r.out" 2>&1 && ok || fail "$n sandbox: creto --version: $(cat "$T/r.out")"
    if grep -q '^ExecStart=.* isolation check' "$unitdir/$n"; then
      # passive only: a test sends no packet outside the host
      rc=0
      systemd-run --quiet --wait --pipe --collect -p DynamicUser=yes "${props[@]}" \
        "$CRETO" isolation check >"$T/r.out" 2>&1 || rc=$?
      case $rc in 0|1) ok ;; *) fail "$n sandbox: isolation check exit $rc: $(cat "$T/r.out")" ;; esac
    fi
  done
fi
finish
