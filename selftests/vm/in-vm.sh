# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# Sourced first (before selftests/lib.sh) by a test that must run in the
# selftests/vm guest: on the host it runs the test there, through
# run-in-vm.sh, and exits with the test's result. The test's own summary
# line comes from the guest; a guest that cannot run reports one here.
if [ -z "${IOFENCE_VM-}" ]; then
	# lib.sh's scratch space: tmpfs has no O_DIRECT before Linux 6.6, and
	# the guest's /tmp is an ext4 disk cached by the host.
	IOFENCE_TEST_TMP=/tmp "$(dirname "${BASH_SOURCE[0]}")/run-in-vm.sh" bash "$(realpath "$0")" "$@"
	rc=$?
	case $rc in
	77)
		echo "0 passed, 0 failed, 1 skipped"
		exit 0
		;;
	125)
		echo "not ok 1 - $(basename "$0") in the guest: no exit status"
		echo "0 passed, 1 failed, 0 skipped"
		;;
	esac
	exit $rc
fi
