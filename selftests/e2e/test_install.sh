#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# check-lane: alone (it installs the .deb on this host, users and groups included)
#
# What `make install` and the .deb put on a machine: the same list of files,
# in the places the man pages name. `make install` into a throwaway DESTDIR
# with PREFIX=/usr and /usr/local, `make uninstall` back to no file at all;
# the .deb built by dpkg-buildpackage from a throwaway copy of the tree
# (nothing lands in the checkout or beside it), its list and dependencies,
# and a dpkg install, reinstall, removal and purge into a throwaway root
# whose maintainer scripts run against that root only (DPKG_ROOT).
cd "$(dirname "$0")/../.." || exit 1
. selftests/lib.sh

ROOT=$PWD
MAKE_Q=(make --no-print-directory -C "$ROOT" OUT="$OUT")
# What it checks is where files go, which no sanitizer sees, and the .deb
# it builds is a plain build anyway: the sanitizer pass of CI leaves it to
# the plain pass (40 s of its 30 minutes).
if sanitizer_build "$OUT/iofenced"; then
	skip "$OUT/iofenced is a sanitizer build: the plain pass checks the install and the .deb"
	exit 0
fi

# want_list PREFIX UNITDIR [deb]: the files an install puts there, one a
# line, sorted; a .deb has its man pages compressed and its docs.
want_list() {
	local p=$1 u=$2 gz=
	[ "${3:-}" = deb ] && gz=.gz
	{
		printf '%s\n' "$p/sbin/iofenced" "$p/bin/iofencectl" "$p/sbin/iofence-inspect" \
			"$p/libexec/iofence/iofence-connect-hook" \
			"$p/lib/tmpfiles.d/iofence.conf" "$p/lib/sysusers.d/iofence.conf" \
			"$p/share/bash-completion/completions/iofencectl" \
			"$u/iofenced.service" "$u/iofenced.socket" /etc/iofence/iofenced.conf
		printf "$p/share/man/%s$gz\n" man8/iofenced.8 man8/iofencectl.8 man5/iofenced.conf.5 \
			man7/iofence-protocol.7 man7/iofence-bpf.7
		[ "${3:-}" = deb ] && printf '%s\n' /usr/share/doc/iofence/copyright \
			/usr/share/doc/iofence/changelog.gz /usr/share/lintian/overrides/iofence
	} | sort
}

# tree_list DIR: every file and symlink under DIR, as absolute paths of
# the installed system, sorted.
tree_list() { (cd "$1" && find . ! -type d | sed 's|^\.||' | sort); }

# same_list LABEL WANT GOT: the two lists are equal; shows the difference.
same_list() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		diff <(echo "$2") <(echo "$3") | sed -n 's/^[<>]/#   &/p'
	fi
}

# man_files MANPAGE...: the absolute paths named in the FILES sections of
# those pages (roff source, plain or gzipped), one a line.
man_files() {
	local m
	for m in "$@"; do
		case $m in *.gz) zcat "$m" ;; *) cat "$m" ;; esac | awk '
			/^\.SH / { on = ($0 ~ /^\.SH "?FILES"?[ \t]*$/); next }
			on && /^\.(I|B|IR|RI|BR|RB|IB|BI)[ \t]/ {
				s = $0
				sub(/^\.[A-Z]+[ \t]+/, "", s)
				gsub(/\\-/, "-", s); gsub(/\\%|\\&|\\f[BIRP]|"/, "", s)
				split(s, w, /[ \t]+/)
				if (w[1] ~ /^\//) print w[1]
			}'
	done | sort -u
}

# on_install_tree PATH: a path that an install puts there (not one that the
# daemon makes at run time, nor the kernel's, nor the source tree's).
on_install_tree() {
	case $1 in /etc/* | /usr/* | /lib/* | /bin/* | /sbin/*) return 0 ;; esac
	return 1
}

# man_paths_exist LABEL ROOT MANPAGE...: each install-tree path in the
# FILES sections exists under ROOT (/lib and /usr/lib are one on a merged
# /usr, as on every current Debian).
man_paths_exist() {
	local label=$1 r=$2 p n=0 missing=''
	shift 2
	while read -r p; do
		if [ -z "$p" ] || ! on_install_tree "$p"; then continue; fi
		n=$((n + 1))
		[ -e "$r$p" ] && continue
		case $p in
		/lib/*) [ -e "$r/usr$p" ] && continue ;;
		/usr/lib/*) [ -e "$r${p#/usr}" ] && continue ;;
		esac
		missing+=" $p"
	done < <(man_files "$@")
	check "$label: the man pages' FILES name installed paths ($n)" [ "$n" -gt 0 ]
	check "$label: every installed path the man pages' FILES name is there${missing:+ (not:$missing)}" \
		[ -z "$missing" ]
}

# modes_ok ROOT PREFIX: programs 0755, the rest 0644.
modes_ok() {
	local r=$1 p=$2 f m bad=''
	while read -r f; do
		m=$(stat -c %a "$r$f")
		case $f in
		"$p"/sbin/* | "$p"/bin/* | "$p"/libexec/*) [ "$m" = 755 ] || bad+=" $f:$m" ;;
		*) [ "$m" = 644 ] || bad+=" $f:$m" ;;
		esac
	done < <(tree_list "$r")
	[ -z "$bad" ] || echo "# modes:$bad"
	[ -z "$bad" ]
}

# units_ok ROOT PREFIX UNITDIR: the units name this install's daemon and
# no placeholder is left in them.
units_ok() {
	grep -q "^ExecStart=-\?$2/sbin/iofenced\b" "$1$3/iofenced.service" &&
		! grep -qE '@[A-Za-z_]+@' "$1$3/iofenced.service" "$1$3/iofenced.socket"
}

# groups_and_dirs LABEL ROOT: after systemd-sysusers and systemd-tmpfiles
# ran against ROOT, its groups and directories are as documented.
groups_and_dirs() {
	local label=$1 r=$2 gid
	gid=$(awk -F: '$1 == "iofence" { print $3 }' "$r/etc/group" 2>/dev/null)
	check "$label: groups iofence and iofence-admin exist" \
		eval "[ -n '$gid' ] && grep -q '^iofence-admin:' '$r/etc/group'"
	check "$label: /run/iofence is 0750 root:iofence ($(stat -c '%a %u:%g' "$r/run/iofence" 2>&1))" \
		[ "$(stat -c '%a %u:%g' "$r/run/iofence" 2>/dev/null)" = "750 0:$gid" ]
	check "$label: /var/lib/iofence is 0700 root:root ($(stat -c '%a %u:%g' "$r/var/lib/iofence" 2>&1))" \
		[ "$(stat -c '%a %u:%g' "$r/var/lib/iofence" 2>/dev/null)" = "700 0:0" ]
}

# --- make install / uninstall ----------------------------------------------

if ! "${MAKE_Q[@]}" all >"$T/build.log" 2>&1; then
	not_ok "the tree builds (make all)" "$(tail -5 "$T/build.log")"
	exit 1
fi

for prefix in /usr /usr/local; do
	D=$T/destdir${prefix//\//-}
	mkdir -p "$D"
	if [ "$prefix" = /usr ]; then
		unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null)
		: "${unitdir:=/lib/systemd/system}"
	else
		unitdir=$prefix/lib/systemd/system
	fi
	label="make install PREFIX=$prefix"
	if ! "${MAKE_Q[@]}" install DESTDIR="$D" PREFIX="$prefix" >"$T/install.log" 2>&1; then
		not_ok "$label" "$(tail -5 "$T/install.log")"
		continue
	fi
	ok "$label"
	same_list "$label: the expected files, no more" "$(want_list "$prefix" "$unitdir")" "$(tree_list "$D")"
	check "$label: programs 0755, the rest 0644" modes_ok "$D" "$prefix"
	check "$label: the units start $prefix/sbin/iofenced, no placeholder left" \
		units_ok "$D" "$prefix" "$unitdir"
	check "$label: the installed iofenced and iofencectl run (--help)" \
		eval "'$D$prefix/sbin/iofenced' --help >/dev/null 2>&1 && '$D$prefix/bin/iofencectl' --help >/dev/null 2>&1"
	if [ "$prefix" = /usr ]; then
		man_paths_exist "$label" "$D" "$D$prefix"/share/man/man*/*
	elif command -v systemd-sysusers >/dev/null && command -v systemd-tmpfiles >/dev/null; then
		# As the README says after a make install: both read /usr/local/lib.
		systemd-sysusers --root="$D" >"$T/sysusers.log" 2>&1
		systemd-tmpfiles --root="$D" --create >"$T/tmpfiles.log" 2>&1
		groups_and_dirs "$label, systemd-sysusers and systemd-tmpfiles --create" "$D"
		rm -rf "${D:?}/etc/group" "${D:?}/etc/gshadow" "${D:?}/etc/passwd" "${D:?}/etc/shadow" \
			"${D:?}/etc/.pwd.lock" "${D:?}/run" "${D:?}/var"
	else
		skip "$label: no systemd-sysusers or systemd-tmpfiles to apply the entries with"
	fi

	# The admin's config survives a reinstall and the uninstall.
	conf=$D/etc/iofence/iofenced.conf
	echo "# changed by $TEST_NAME" >>"$conf"
	"${MAKE_Q[@]}" install DESTDIR="$D" PREFIX="$prefix" >"$T/install.log" 2>&1
	check "$label: a second install keeps a changed config, and says so" \
		eval "tail -n 1 '$conf' | grep -q '$TEST_NAME' && grep -q 'KEPT.*iofenced.conf' '$T/install.log'"
	"${MAKE_Q[@]}" uninstall DESTDIR="$D" PREFIX="$prefix" >"$T/uninstall.log" 2>&1
	check "$label: uninstall keeps a changed config, and says so" \
		eval "[ -f '$conf' ] && grep -q 'KEPT.*iofenced.conf' '$T/uninstall.log'"
	rm -f "$conf"

	"${MAKE_Q[@]}" install DESTDIR="$D" PREFIX="$prefix" >"$T/install.log" 2>&1
	if "${MAKE_Q[@]}" uninstall DESTDIR="$D" PREFIX="$prefix" >"$T/uninstall.log" 2>&1; then
		left=$(tree_list "$D")
		check "$label: make uninstall leaves no file${left:+ (left: ${left//$'\n'/ })}" [ -z "$left" ]
		check "$label: make uninstall removes iofence's own directories" \
			eval "[ ! -e '$D/etc/iofence' ] && [ ! -e '$D$prefix/libexec/iofence' ]"
	else
		not_ok "$label: make uninstall" "$(tail -5 "$T/uninstall.log")"
	fi
done

# A missing file fails the install loudly, and installs nothing.
D=$T/destdir-missing
mkdir -p "$D"
if "${MAKE_Q[@]}" install DESTDIR="$D" PREFIX=/usr inst-conf=no/such/iofenced.conf \
	>"$T/install.log" 2>&1; then
	not_ok "make install fails when a file is missing"
else
	check "make install fails when a file is missing, names it, installs nothing" \
		eval "grep -q 'missing: no/such/iofenced.conf' '$T/install.log' && [ -z \"\$(tree_list '$D')\" ]"
fi

# So does a unit with a placeholder that install does not know.
printf '[Service]\nExecStart=@sbindir@/iofenced\n' >"$T/bad.service"
if "${MAKE_Q[@]}" install DESTDIR="$D" PREFIX=/usr "inst-unit-y=$T/bad.service:/x/bad.service:0644" \
	>"$T/install.log" 2>&1; then
	not_ok "make install fails on a placeholder left in a unit"
else
	check "make install fails on a placeholder left in a unit, names it, installs nothing" \
		eval "grep -q 'bad.service: a placeholder is left' '$T/install.log' && [ -z \"\$(tree_list '$D')\" ]"
fi

# --- the Debian package ------------------------------------------------------

deb_tools=(dpkg-buildpackage dpkg-deb dpkg-checkbuilddeps dh)
for tool in "${deb_tools[@]}"; do
	command -v "$tool" >/dev/null || {
		skip "the .deb: no $tool (scripts/deps.sh installs dpkg-dev and debhelper)"
		exit 0
	}
done
if ! dpkg-checkbuilddeps debian/control >"$T/builddeps.log" 2>&1; then
	skip "the .deb: build dependencies missing: $(sed 's/^dpkg-checkbuilddeps: //' "$T/builddeps.log" | tr '\n' ' ')"
	exit 0
fi

# A throwaway copy of the tree: what git tracks or would (the work in
# progress included), never build/; dpkg-buildpackage writes its .deb
# beside the copy, in $T.
SRC=$T/src
# existing: of the NUL-separated names on stdin, those that exist (a file
# deleted but not yet committed is listed and gone).
existing() {
	local f
	while IFS= read -r -d '' f; do
		[ -e "$f" ] && printf '%s\0' "$f"
	done
}
mkdir -p "$SRC"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | existing |
		xargs -0 -r cp -a --parents -t "$SRC")
else
	tar -C "$ROOT" --exclude=./build -cf - . | tar -C "$SRC" -xf -
fi

# Even without nocheck the rules run no test: the suite needs root, BPF,
# loop devices and FUSE (dh leaves an empty override out of its plan).
check "debian/rules would run no test suite, nocheck or not (dh build --no-act)" \
	eval "(cd '$SRC' && env -u DEB_BUILD_OPTIONS dh build --no-act) >'$T/plan.log' 2>&1 &&
		grep -q dh_auto_build '$T/plan.log' && ! grep -q dh_auto_test '$T/plan.log'"

t0=$(mono_ms)
(cd "$SRC" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u OUT -u SANITIZE -u V \
	DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
	dpkg-buildpackage -us -uc -b) >"$T/deb.log" 2>&1
rc=$?
build_ms=$(($(mono_ms) - t0))
debs=("$T"/iofence_*.deb)
if [ "$rc" -ne 0 ] || [ ! -f "${debs[0]}" ]; then
	not_ok "dpkg-buildpackage -us -uc -b builds iofence_*.deb (exit $rc)"
	tail -20 "$T/deb.log" | sed 's/^/#   /'
	exit 1
fi
DEB=${debs[0]}
ok "dpkg-buildpackage -us -uc -b builds $(basename "$DEB")"
echo "# .deb: built in $((build_ms / 1000)).$((build_ms % 1000 / 100)) s, $(stat -c %s "$DEB") bytes," \
	"$(dpkg-deb -c "$DEB" | grep -vc '^d') files"
# debian/rules empties dh_auto_test, which dh then leaves out.
check "the package build ran no test suite" \
	eval "! grep -qE '^ +dh_auto_test|^== (unit|end-to-end) tests|selftests/run\.sh' '$T/deb.log'"

# The same list from the package's index and from its unpacked files.
unitdir=$(dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed -n 's|^\.\(.*\)/iofenced\.service$|\1|p')
want=$(want_list /usr "${unitdir:-/lib/systemd/system}" deb)
same_list "the .deb's file list (dpkg-deb -c)" "$want" \
	"$(dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ { print $6 }' | sed 's|^\.||' | sort)"
X=$T/extract
dpkg-deb -x "$DEB" "$X"
same_list "the .deb's files (dpkg-deb -x)" "$want" "$(tree_list "$X")"
check "the .deb's units start /usr/sbin/iofenced" units_ok "$X" /usr "${unitdir:-/lib/systemd/system}"
man_paths_exist "the .deb" "$X" "$X"/usr/share/man/man*/*
check "the .deb marks /etc/iofence/iofenced.conf a conffile" \
	eval "dpkg-deb -I '$DEB' conffiles | grep -qx /etc/iofence/iofenced.conf"

# Dependencies: what the programs run with, nothing that builds them.
deps=$(dpkg-deb -f "$DEB" Depends)
echo "# Depends: $deps"
# dep_names DEPENDS: each package named, alternatives too, one a line.
dep_names() { tr ',|' '\n' <<<"$1" | sed 's/(.*)//; s/[[:space:]]//g' | grep -v '^$'; }
bad=$(dep_names "$deps" |
	grep -vE '^(lib[a-z0-9.+-]+|zlib1g|systemd(-standalone-sysusers|-sysusers)?)$' |
	tr '\n' ' ')
dev=$(dep_names "$deps" | grep -E -- '-dev\b|clang|llvm|bpftool|gcc|debhelper' | tr '\n' ' ')
check "Depends names runtime libraries (and systemd-sysusers) only${bad:+ (not: $bad)}${dev:+ (build tools: $dev)}" \
	[ -z "$bad$dev" ]
has_libs() { # DEPENDS PACKAGE...
	local d=$1 l
	shift
	for l in "$@"; do
		dep_names "$d" | grep -qx "$l" || return 1
	done
}
check "Depends has the libraries the programs link (libbpf, liburing, jansson, inih, zlib)" \
	has_libs "$deps" libbpf1 liburing2 libjansson4 libinih1 zlib1g
# librados is loaded when the first rbd storage is armed, not linked.
recs=$(dpkg-deb -f "$DEB" Recommends)
check "Recommends librados2, which rbd storages load (${recs:-none})" has_libs "$recs" librados2
check "and Depends does not need it (a host without Ceph)" eval '! dep_names "$deps" | grep -qx librados2' 

# postinst_ok: it enables the socket and the daemon (which then starts at
# boot, before libvirtd), and starts the daemon never (only try-restart,
# after an upgrade); every start is behind systemd's presence.
postinst_ok() {
	local pi
	pi=$(dpkg-deb -I "$DEB" postinst) || return 1
	grep -q "deb-systemd-helper enable 'iofenced.socket'" <<<"$pi" &&
		grep -q "deb-systemd-helper enable 'iofenced.service'" <<<"$pi" &&
		! grep "deb-systemd-invoke" <<<"$pi" | grep -v try-restart | grep -q iofenced.service &&
		[ "$(grep -c 'deb-systemd-invoke' <<<"$pi")" -le "$(grep -c '/run/systemd/system' <<<"$pi")" ]
}
check "the postinst enables iofenced.socket and iofenced.service, never starts iofenced.service, starts nothing without systemd" \
	postinst_ok

# Into a throwaway root: dpkg's own database there, the maintainer scripts
# run outside a chroot (the root has no shell) with DPKG_ROOT set, which
# every one of them honours: systemd-sysusers and systemd-tmpfiles take
# --root, deb-systemd-helper works in the root, and nothing is started.
# The host's groups, units and dirs are compared before and after.
host_state() {
	getent group iofence iofence-admin
	find /etc/systemd /var/lib/systemd/deb-systemd-helper-enabled -name 'iofence*' 2>/dev/null
	ls -d /run/iofence /var/lib/iofence /etc/iofence 2>/dev/null
	dpkg-query -W -f='${Package} ${Status}\n' iofence 2>/dev/null
}
R=$T/root
mkdir -p "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/info" "$R/var/log" "$R/etc"
touch "$R/var/lib/dpkg/status" "$R/var/lib/dpkg/available"
dpkg_r() {
	dpkg --root="$R" --log="$R/var/log/dpkg.log" --force-script-chrootless --force-depends \
		"$@" </dev/null >>"$T/dpkg.log" 2>&1
}
before=$(host_state)
if [ "$(id -u)" -ne 0 ]; then
	skip "dpkg into a throwaway root: needs root (the files belong to root there)"
elif ! command -v systemd-sysusers >/dev/null; then
	skip "dpkg into a throwaway root: no systemd-sysusers for the postinst"
elif dpkg_r -i "$DEB"; then
	ok "dpkg --root installs it into a throwaway root"
	same_list "the installed package's files (dpkg -L)" "$want" \
		"$(dpkg --root="$R" -L iofence | while read -r f; do [ -d "$R$f" ] || echo "$f"; done | sort)"
	groups_and_dirs "dpkg --root, the postinst" "$R"
	check "the socket and the daemon are enabled (at boot: re-armed before libvirtd)" \
		eval "[ -L '$R/etc/systemd/system/sockets.target.wants/iofenced.socket' ] &&
			[ -L '$R/etc/systemd/system/multi-user.target.wants/iofenced.service' ]"
	echo "# changed by $TEST_NAME" >>"$R/etc/iofence/iofenced.conf"
	dpkg_r -i "$DEB"
	check "a reinstall keeps a changed conffile" \
		eval "tail -n 1 '$R/etc/iofence/iofenced.conf' | grep -q '$TEST_NAME'"
	dpkg_r --purge iofence
	left=$(tree_list "$R" | grep -vxE '/etc/(group|gshadow|passwd|shadow|\.pwd\.lock)(-)?|/var/log/dpkg\.log|/var/lib/dpkg/.*')
	check "dpkg --purge leaves nothing of it (groups stay)${left:+ (left: ${left//$'\n'/ })}" [ -z "$left" ]
else
	not_ok "dpkg --root installs it into a throwaway root"
	tail -20 "$T/dpkg.log" | sed 's/^/#   /'
fi
check "the host is as before: groups, units, /run/iofence, /var/lib/iofence, its dpkg database" \
	[ "$(host_state)" = "$before" ]

# lintian tells, it does not judge.
if command -v lintian >/dev/null; then
	lintian "$DEB" >"$T/lintian.log" 2>/dev/null
	sed 's/^/# lintian: /' "$T/lintian.log"
	echo "# lintian: $(grep -c '^E:' "$T/lintian.log") errors, $(grep -c '^W:' "$T/lintian.log") warnings"
else
	skip "lintian is not installed (information only)"
fi
