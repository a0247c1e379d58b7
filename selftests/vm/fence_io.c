// SPDX-License-Identifier: GPL-2.0-only
/*
 * Every way a process writes to a file or a block device, one at a time,
 * for test_vm_fence.sh to see which the kernel write fence refuses.
 *
 *   fence_io FILE
 *
 * Opens FILE for reading and writing and maps its first page shared and
 * read-only, before anything is fenced (a fence refuses the open itself),
 * and prints "ready". Then reads one operation per line from stdin and
 * answers each with one line, "OP ok" or "OP <errno name>" (EIO, ...):
 *
 *   write pwrite uring uring_async aio   a 512-byte write at offset 0:
 *                     write(2), pwrite(2), io_uring's IORING_OP_WRITE inline
 *                     and in io-wq (IOSQE_ASYNC), Linux AIO's IOCB_CMD_PWRITE
 *   copy              copy_file_range(2) of 512 bytes from offset 4096 of
 *                     FILE itself (across file systems it stops at EXDEV
 *                     before any check of the file written)
 *   splice sendfile   512 bytes from a memfd: splice(2) from a pipe,
 *                     sendfile(2)
 *   fallocate         fallocate(2): 4 KiB (a block device: FALLOC_FL_ZERO_RANGE)
 *   ftruncate truncate   to its size (a regular file only)
 *   mmap              a new shared writable mapping, and a store through it
 *   mprotect          the read-only shared mapping made writable
 *   open open_trunc   open(2) anew with O_WRONLY, and O_WRONLY | O_TRUNC
 *                     (then FILE has its size again)
 *   read mmap_read    pread(2) (whatever it returns), and a new shared
 *                     read-only mapping
 *
 *   fence_io --probe PERIOD_MS FILE
 *
 * Opens FILE for writing, then writes one byte at offset 0 every
 * PERIOD_MS until SIGTERM. For the first write and every write whose
 * result differs from the one before it prints "<before> <after> <result>
 * <prev_before> <prev_after>": CLOCK_MONOTONIC ns (the kernel's clock for
 * the fence) just before and after the write, ok or its errno name, and
 * the times of the write before it (0 0 for the first). At the end,
 * "<ns> <ns> end <writes> <refused>".
 *
 *   fence_io --pid PID ...
 *
 * Runs the rest as a child whose pid is PID (clone3's set_tid: root),
 * and exits with its status: a process that got another's pid.
 *
 * Exits 1 on a setup error, after saying which.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/aio_abi.h>
#include <linux/falloc.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define LEN 512

static const char *path;
static int fd = -1;
static struct stat st;
static void *ro_map;
static size_t page;
static char buf[LEN] __attribute__((aligned(4096)));

/* 0, or the errno of the first step that failed. */
static int err(long r)
{
	return r < 0 ? errno : 0;
}

static int res(ssize_t r, ssize_t want)
{
	if (r < 0)
		return errno;
	return r == want ? 0 : EMSGSIZE;
}

static int do_uring(bool async)
{
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int r;

	r = io_uring_queue_init(2, &ring, 0);
	if (r < 0)
		return -r;
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_write(sqe, fd, buf, LEN, 0);
	if (async)
		sqe->flags |= IOSQE_ASYNC;
	r = io_uring_submit_and_wait(&ring, 1);
	if (r >= 0)
		r = io_uring_wait_cqe(&ring, &cqe);
	if (r >= 0) {
		r = cqe->res < 0 ? -cqe->res : cqe->res == LEN ? 0 : EMSGSIZE;
		io_uring_cqe_seen(&ring, cqe);
	} else {
		r = -r;
	}
	io_uring_queue_exit(&ring);
	return r;
}

static int do_aio(void)
{
	aio_context_t ctx = 0;
	struct iocb cb = { 0 }, *cbs[1] = { &cb };
	struct io_event ev;
	int r;

	if (syscall(SYS_io_setup, 1, &ctx))
		return errno;
	cb.aio_fildes = (uint32_t)fd;
	cb.aio_lio_opcode = IOCB_CMD_PWRITE;
	cb.aio_buf = (uint64_t)(uintptr_t)buf;
	cb.aio_nbytes = LEN;
	/* A refusal may come from io_submit() or in the event. */
	if (syscall(SYS_io_submit, ctx, 1, cbs) != 1)
		r = errno;
	else if (syscall(SYS_io_getevents, ctx, 1, 1, &ev, NULL) != 1)
		r = errno;
	else
		r = ev.res < 0 ? (int)-ev.res : ev.res == LEN ? 0 : EMSGSIZE;
	syscall(SYS_io_destroy, ctx);
	return r;
}

/* A source outside every storage. */
static int source(void)
{
	int m = memfd_create("fence_io", MFD_CLOEXEC);

	if (m >= 0 && pwrite(m, buf, LEN, 0) != LEN) {
		close(m);
		return -1;
	}
	return m;
}

static int do_copy(int how)
{
	int m, p[2], r;
	loff_t in = 4096, out = 0;
	off_t off = 0;

	if (!how)
		return res(copy_file_range(fd, &in, fd, &out, LEN, 0), LEN);
	m = source();
	if (m < 0)
		return errno;
	switch (how) {
	case 1:
		if (pipe(p)) {
			r = errno;
			break;
		}
		r = res(write(p[1], buf, LEN), LEN);
		if (!r)
			r = res(splice(p[0], NULL, fd, &out, LEN, 0), LEN);
		close(p[0]);
		close(p[1]);
		break;
	default:
		r = res(sendfile(fd, m, &off, LEN), LEN);
		break;
	}
	close(m);
	return r;
}

static int do_fallocate(void)
{
	if (S_ISBLK(st.st_mode))
		return err(fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, 4096));
	return err(fallocate(fd, 0, 0, 4096));
}

static int do_mmap(bool write)
{
	int prot = PROT_READ | (write ? PROT_WRITE : 0);
	char *p = mmap(NULL, page, prot, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return errno;
	if (write)
		p[0] = 'x';
	munmap(p, page);
	return 0;
}

static int do_mprotect(void)
{
	int r = err(mprotect(ro_map, page, PROT_READ | PROT_WRITE));

	if (!r)
		mprotect(ro_map, page, PROT_READ);
	return r;
}

static int do_open(int flags)
{
	int f = open(path, flags | O_CLOEXEC);

	if (f < 0)
		return errno;
	close(f);
	if ((flags & O_TRUNC) && S_ISREG(st.st_mode) &&
	    ftruncate(fd, st.st_size))
		return errno;
	return 0;
}

static int run(const char *op)
{
	static const struct {
		const char *name;
		int arg;
	} ops[] = {
		{ "write", 0 },	      { "pwrite", 1 },	   { "uring", 2 },
		{ "uring_async", 3 }, { "aio", 4 },	   { "copy", 5 },
		{ "splice", 6 },      { "sendfile", 7 },   { "fallocate", 8 },
		{ "ftruncate", 9 },   { "truncate", 10 },  { "mmap", 11 },
		{ "mprotect", 12 },   { "open", 13 },	   { "open_trunc", 14 },
		{ "read", 15 },	      { "mmap_read", 16 },
	};
	unsigned int i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strcmp(op, ops[i].name))
			break;
	switch (i < sizeof(ops) / sizeof(ops[0]) ? ops[i].arg : -1) {
	case 0:
		if (lseek(fd, 0, SEEK_SET) < 0)
			return errno;
		return res(write(fd, buf, LEN), LEN);
	case 1:
		return res(pwrite(fd, buf, LEN, 0), LEN);
	case 2:
		return do_uring(false);
	case 3:
		return do_uring(true);
	case 4:
		return do_aio();
	case 5:
	case 6:
	case 7:
		return do_copy(ops[i].arg - 5);
	case 8:
		return do_fallocate();
	case 9:
		return err(ftruncate(fd, st.st_size));
	case 10:
		return err(truncate(path, st.st_size));
	case 11:
		return do_mmap(true);
	case 12:
		return do_mprotect();
	case 13:
		return do_open(O_WRONLY);
	case 14:
		return do_open(O_WRONLY | O_TRUNC);
	case 15:
		return err(pread(fd, buf, LEN, 0));
	case 16:
		return do_mmap(false);
	}
	return EINVAL;
}

static const char *name(int e)
{
	const char *n = e ? strerrorname_np(e) : "ok";

	return n ? n : "unknown";
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	stop = sig;
}

static int probe(int period_ms)
{
	struct timespec ts = { period_ms / 1000, period_ms % 1000 * 1000000L };
	unsigned long long t0 = 0, t1 = 0, p0 = 0, p1 = 0;
	unsigned long writes = 0, refused = 0;
	int last = -1, e;

	signal(SIGTERM, on_term);
	while (!stop) {
		t0 = mono_ns();
		e = res(pwrite(fd, "x", 1, 0), 1);
		t1 = mono_ns();
		writes++;
		refused += e == EIO;
		if (e != last)
			printf("%llu %llu %s %llu %llu\n", t0, t1, name(e), p0,
			       p1);
		fflush(stdout);
		last = e;
		p0 = t0;
		p1 = t1;
		nanosleep(&ts, NULL);
	}
	t0 = mono_ns();
	printf("%llu %llu end %lu %lu\n", t0, t0, writes, refused);
	return 0;
}

/* Goes on as a child of pid @pid; returns in the parent with its status. */
static int as_pid(pid_t pid, bool *child)
{
	struct clone_args ca = { 0 };
	pid_t tid[1] = { pid };
	int status;
	long r;

	ca.exit_signal = SIGCHLD;
	ca.set_tid = (uint64_t)(uintptr_t)tid;
	ca.set_tid_size = 1;
	r = syscall(SYS_clone3, &ca, sizeof(ca));
	if (r < 0) {
		fprintf(stderr, "fence_io: clone3 with pid %d: %s\n", pid,
			strerror(errno));
		return 1;
	}
	*child = !r;
	/* It ends with the parent, which the test tracks. */
	if (!r)
		return prctl(PR_SET_PDEATHSIG, SIGKILL) ? 1 : 0;
	if (waitpid((pid_t)r, &status, 0) < 0)
		return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv)
{
	bool child = false;
	char line[64];
	int period = 0, r;

	if (argc > 3 && !strcmp(argv[1], "--pid")) {
		r = as_pid((pid_t)atoi(argv[2]), &child);
		if (!child)
			return r;
		argv[2] = argv[0];
		argv += 2;
		argc -= 2;
	}
	if (argc == 4 && !strcmp(argv[1], "--probe")) {
		period = atoi(argv[2]);
		path = argv[3];
	} else if (argc == 2) {
		path = argv[1];
	} else {
		fprintf(stderr,
			"usage: fence_io [--pid PID] FILE | fence_io --probe PERIOD_MS FILE\n");
		return 2;
	}
	page = (size_t)sysconf(_SC_PAGESIZE);
	memset(buf, 'f', sizeof(buf));
	fd = open(path, (period ? O_WRONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		fprintf(stderr, "fence_io: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (period > 0)
		return probe(period);
	ro_map = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0);
	if (ro_map == MAP_FAILED) {
		fprintf(stderr, "fence_io: mmap %s: %s\n", path,
			strerror(errno));
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready\n");
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			printf("%s %s\n", line, name(run(line)));
	}
	return 0;
}
