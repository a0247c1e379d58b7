#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# What the allocator's locks cost SCHED_FIFO threads, with glibc's malloc
# ($OUT, the plain build) and with ASan's (build/san, its one program
# built here when missing): the reason an ASan build of iofenced runs no
# real-time thread by default (userspace/control/config.h). RTA_SECONDS
# (10) per run, with 0, 2 and 4 ordinary threads allocating beside the
# two FIFO ones. Numbers are printed, never judged.
set -eu
cd "$(dirname "$0")/../.."
: "${OUT:=build}" "${RTA_SECONDS:=10}"
san=build/san/rt_alloc_bench
[ -x "$san" ] || make -s SANITIZE=1 "$san"
echo "== the allocator's locks and SCHED_FIFO threads ($(nproc) CPUs)"
for bin in "$OUT/rt_alloc_bench" "$san"; do
	for n in 0 2 4; do
		"$bin" "$RTA_SECONDS" "$n"
	done
done
