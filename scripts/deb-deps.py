#!/usr/bin/env python3
"""The runtime .debs a package needs that a minimal Debian 12 lacks.

usage: scripts/deb-deps.py PACKAGE.deb            -> the list on stdout
       scripts/deb-deps.py --minbase              -> the minbase set itself

Reads only the local apt lists (`apt-cache dumpavail`, after an
`apt-get update` on the build machine outside): nothing is downloaded.

minbase = what `debootstrap --variant=minbase bookworm` installs: every
package of Priority: required, plus apt, closed under Depends/Pre-Depends.
The package's closure is taken the same way from the Depends/Pre-Depends of
the .deb (`dpkg-deb -f`).  Of an alternative (a | b) the first that exists
is followed, a virtual package by its first provider; an alternative already
satisfied by the set is not followed further.  The output is closure minus
minbase, one "name version" line each, sorted: the .debs to `apt-get
download` and carry in beside the package (docs/install.md).
"""
import re
import subprocess
import sys


def parse_avail():
    out = subprocess.run(["apt-cache", "dumpavail"], check=True, capture_output=True, text=True).stdout
    pkgs, provides = {}, {}
    for stanza in out.split("\n\n"):
        fields, key = {}, None
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, val = line.partition(":")
                fields[key] = val.strip()
        name = fields.get("Package")
        if not name:
            continue
        pkgs[name] = fields
        for p in split_deps(fields.get("Provides", "")):
            provides.setdefault(p[0], []).append(name)
    return pkgs, provides


def split_deps(text):
    """'a (>= 1) | b, c:any' -> [['a', 'b'], ['c']] (names only)."""
    groups = []
    for part in text.split(","):
        alts = [re.sub(r"[\s(\[].*$", "", a.strip()).split(":")[0] for a in part.split("|")]
        alts = [a for a in alts if a]
        if alts:
            groups.append(alts)
    return groups


def closure(roots, pkgs, provides, have=frozenset()):
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        f = pkgs[name]
        for alts in split_deps(f.get("Pre-Depends", "")) + split_deps(f.get("Depends", "")):
            done = seen | have
            if any(a in done or any(p in done for p in provides.get(a, [])) for a in alts):
                continue
            for a in alts:
                if a in pkgs:
                    todo.append(a)
                    break
                if provides.get(a):
                    todo.append(sorted(provides[a])[0])
                    break
            else:
                sys.exit("deb-deps: no package satisfies " + " | ".join(alts))
    return seen


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    pkgs, provides = parse_avail()
    if not pkgs:
        sys.exit("deb-deps: no apt lists (run apt-get update on the build machine first)")
    base_roots = [n for n, f in pkgs.items() if f.get("Priority") == "required"] + ["apt"]
    minbase = closure(base_roots, pkgs, provides)
    if sys.argv[1] == "--minbase":
        print("\n".join(sorted(minbase)))
        return
    deb = sys.argv[1]
    fields = {}
    for k in ("Pre-Depends", "Depends"):
        fields[k] = subprocess.run(["dpkg-deb", "-f", deb, k], check=True, capture_output=True,
                                   text=True).stdout.strip()
    # the package itself as a node of the graph
    me = {"Package": "<deb>", "Depends": fields["Depends"], "Pre-Depends": fields["Pre-Depends"]}
    pkgs["<deb>"] = me
    need = closure(["<deb>"], pkgs, provides, have=frozenset(minbase)) - {"<deb>"} - minbase
    for n in sorted(need):
        print(n, pkgs[n].get("Version", "?"))


if __name__ == "__main__":
    main()
