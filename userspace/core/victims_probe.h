/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The /proc reads of a victim search, each process's on a helper thread
 * with a deadline, so that no process whose entries block can hold the
 * search for the others.
 *
 * What blocks is a process, not the search: an exec stuck paging in a
 * binary from a dead mount, a qemu in D state holding its mmap lock
 * (maps, cmdline). The search hands the reads of one process to a
 * helper and waits at most PROBE_DEADLINE_MS. Past it, the probe is
 * abandoned: the helper stays in the kernel until the hang clears, then
 * frees the probe (drop()) and is idle again; the search goes on with
 * the next process and counts this one as a skip (-ETIMEDOUT).
 *
 * The pile of stuck helpers is bounded twice. A (pid, kind) with an
 * abandoned probe still in the kernel is not read again by any search
 * (probe_stuck()): a process that blocks costs one helper per kind of
 * read, not one per search. And there are at most PROBE_HELPERS_MAX
 * helpers; with none free, the reads run on the caller's thread, which is
 * how every search ran before helpers (a worker, never the core).
 *
 * The helpers are the process's, shared by every search: one lock, held
 * only to hand over and take back probes.
 */
#ifndef IOFENCE_VICTIMS_PROBE_H
#define IOFENCE_VICTIMS_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A /proc read takes microseconds: this long, it is stuck. */
#define PROBE_DEADLINE_MS 200
/* A helper still runnable at its deadline gets it again, this often. */
#define PROBE_RUNNABLE_ROUNDS 10
#define PROBE_HELPERS_MAX 32
/* Deep enough for a probe's PATH_MAX buffers, with ASan's redzones. */
#define PROBE_STACK_SIZE (128 * 1024)
/* A note is a process's name: its comm, or its executable's basename. */
#define PROBE_NOTE_MAX 64
#define PROBE_NOTES 2

/* What a probe reads, for probe_stuck(). */
enum probe_kind {
	PROBE_PROC, /* exe, comm, stat, fds, cwd: no mmap lock */
	PROBE_MM, /* maps, cmdline: under the process's mmap lock */
};

struct probe;
typedef void (*probe_fn)(struct probe *p);

struct probe {
	/* The reads: touches nothing but the probe and what it owns. */
	probe_fn run;
	/* Frees an abandoned probe and what it holds, once run() returned. */
	probe_fn drop;
	pid_t pid;
	enum probe_kind kind;
	/*
	 * Written by run() (probe_note()) before what may block, read back
	 * after a timeout: the last one counts.
	 */
	char note[PROBE_NOTES][PROBE_NOTE_MAX];
	int noted;
	/* The probe's own, under the helpers' lock. */
	int state;
	int policy, prio; /* the caller's scheduling class */
};

/*
 * Runs @p->run on a helper at the calling thread's scheduling class, and
 * waits for it at most @deadline_ms: counted again while no helper took
 * it, and while the helper is runnable (up to PROBE_RUNNABLE_ROUNDS
 * deadlines in all): those are waits for a CPU, not for /proc. 0: it
 * ran, and
 * @p is the caller's again. -ETIMEDOUT: abandoned, @p is the helper's
 * now (the caller must not touch it again); @note (when not NULL) gets
 * the probe's note, "" when it had none.
 */
int probe_run(struct probe *p, unsigned int deadline_ms, char *note,
	      size_t note_len);
/*
 * From run(): what the caller may read after a timeout; at most
 * PROBE_NOTES per run, each written once (the caller may be reading the
 * one before).
 */
void probe_note(struct probe *p, const char *s);
/*
 * An abandoned probe of process @pid and @kind is still in the kernel:
 * reading that process again would block again. Its note goes to @note.
 */
bool probe_stuck(pid_t pid, enum probe_kind kind, char *note, size_t len);

struct probe_stats {
	unsigned int helpers; /* started, in all */
	unsigned int stuck; /* running an abandoned probe */
	unsigned long long timeouts; /* probes abandoned, ever */
	unsigned long long inline_runs; /* run by their caller: no helper */
};
void probe_stats(struct probe_stats *st);

#endif
