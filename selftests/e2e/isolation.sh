# SPDX-License-Identifier: GPL-2.0-only
#
# Shared by the test_isolation_*.sh scripts (sourced, with the commands a
# script needs beyond jq and fusermount3 as arguments): lib.sh and
# faultfs.sh, private copies of the binaries, the dummy VMs, the contract
# of every scenario, and helpers.
. "$(dirname "$0")/../lib.sh"
need_root
FAULTFS=${FAULTFS:-$OUT/faultfs}
# shellcheck source=../faultfs/faultfs.sh
. "$(dirname "$0")/../faultfs/faultfs.sh"

for need in jq fusermount3 "$@"; do
	command -v "$need" >/dev/null || { skip "$need is missing"; exit 0; }
done
[ -c /dev/fuse ] || { skip "/dev/fuse is missing"; exit 0; }
[ -x "$FAULTFS" ] || { not_ok "faultfs binary $FAULTFS (make tests)"; exit 1; }

T=$(readlink -f "$T")
mkdir -p "$T/bin" "$T/vm"
if ! cp "$IOFENCED" "$IOFENCECTL" "$FAULTFS" "$T/bin/"; then
	not_ok "copy $IOFENCED, $IOFENCECTL and $FAULTFS (make all tests)"
	exit 1
fi
IOFENCED=$T/bin/${IOFENCED##*/}
IOFENCECTL=$T/bin/${IOFENCECTL##*/}
FAULTFS=$T/bin/${FAULTFS##*/}
export FAULTFS_LOG=$T/faultfs.out
# The dummy VMs: copies of sleep under this run's own name, which only
# these storages' victim patterns match: no other daemon kills them (not
# even one of an earlier run, lingering on a hang with a fence on a device
# number since reused), and no fence of ours reaches another test's VMs.
VM=qemu-iso-$$
cp /bin/sleep "$T/vm/$VM"
QSLEEP=$T/vm/$VM

# The healthy storages live on tmpfs. This VM's disk, under the other
# tests' and builds' writes, holds a 4 KiB O_DIRECT|O_DSYNC write for up
# to 0.2-0.35 s at times (measured): on it a "healthy" storage with a
# 200 ms interval is late now and then, and rightly so. On tmpfs nothing
# but the daemon can make it late, which is what these tests look for.
OK=$(mktemp -d /dev/shm/iofence-ok.XXXXXX) || { not_ok "a tmpfs folder for the healthy storages"; exit 1; }
on_exit "rm -rf '$OK'"

IV=200 TMO=1000 GRACE=500 LATE=400
SPEC="interval_ms=$IV,timeout_ms=$TMO,kill_grace_ms=$GRACE,strategy=force,victims=$VM"
# Victims are killed by T + kill grace, plus slack for a loaded machine.
KILL_BOUND=$((TMO + GRACE + 2500))

# The option that makes faultfs's O_DIRECT writes synchronous, if any.
ffhelp=$("$FAULTFS" --help 2>&1)
SYNC_DIO=()
if grep -q -- '--sync-dio' <<<"$ffhelp"; then
	SYNC_DIO=(--sync-dio)
elif grep -q 'sync_dio' <<<"$ffhelp"; then
	SYNC_DIO=(-o sync_dio)
fi

# ff_dead MNT FILE: FILE ("*": the whole mount) stops answering anything.
# A faultfs without that mode fails the check, and hangs the data path
# instead, so that the rest of the scenario still shows what it can.
ff_dead() {
	if faultfs_set "$1" dead "$2" 2>/dev/null; then
		return 0
	fi
	not_ok "faultfs: mode dead on $2" "not supported; hanging its data path instead"
	faultfs_set "$1" hang "$2"
	return 1
}

show_log() { # daemon name
	echo "# log of $1:"
	grep -v ' event ' "$T/$1.log" | tail -30 | sed 's/^/#   /'
}
